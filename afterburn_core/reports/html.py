"""The HTML report: one self-contained file that opens offline in any browser.

Sections (``run_view.SECTIONS``): executive summary, findings, weights
(layer × module and head heatmaps, spectra, most changed tensors), behaviour
(lengths, strategy and format rates, every test), reward-hack gauges with
their evidence, internals (layer curves, the activation-difference lens's
averaged tables with patchscope, one input's lens heatmap; the causal half
as ``views.internals_causal`` words it: steering's trials and metric tables,
localization bars and shares per block, amplification rates per α with their
intervals, or why each is absent), the most diverged prompts side by side,
provenance. A section
whose analysis the run lacks says why in one line.

Plotly's own bundled ``plotly.min.js`` is embedded once; every chart's figure
sits in one JSON data block that a short script hands to ``Plotly.newPlot``;
nothing is fetched (the page's Content Security Policy forbids it). All markup
is built with ``html_template.tag``, which escapes every string it is given,
so model, tokenizer, checkpoint and suite text can only appear as text.

Cost: the file is the plotly bundle (~4.8 MB) plus the report's figures and
tables (tens of kB for the demo run).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, NamedTuple

from plotly.offline import get_plotlyjs

from afterburn_core.reports import html_charts, internals_parts as parts_of
from afterburn_core.views.internals_causal import (
    AMPLIFICATION_NOTE,
    LOCALIZATION_NOTE,
    PART_TITLES,
    CausalTable,
    causal_view,
)
from afterburn_core.views import weights_detail
from afterburn_core.internals.types import InternalsResult
from afterburn_core.views.internals import AdlTable, internals_view
from afterburn_core.weights.types import WeightDiffResult
from afterburn_core.views import run as run_view, theme, wording, behaviour as behaviour_view, reward_hack as reward_view, weights as weights_view
from afterburn_core.reports.bundle import RunReport
from afterburn_core.views.run import SECTIONS, Fact
from afterburn_core.reports.html_template import Safe, fragment, join, json_block, page, tag
from afterburn_core.views.text import spell_invisible
from afterburn_core.analyses import detector_title
from afterburn_core.reward_hack.types import DetectorResult

FIGURES_ID = "afterburn-figures"
#: What a notebook's chart says when plotly.js is not on the page (``render_fragment`` sends it once per kernel).
NO_PLOTLY = ("This chart needs plotly.js, which the first Afterburn output with charts since the kernel started "
             "carries: restart the kernel and run the notebook again to draw it.")


def render_script(figures_id: str) -> str:
    """The script that hands every figure of the data block ``figures_id`` to plotly (or says why it cannot)."""
    return (
        f"(function () {{ var figures = JSON.parse(document.getElementById('{figures_id}').textContent);"
        " Object.keys(figures).forEach(function (id) {"
        f" if (typeof Plotly === 'undefined') {{ document.getElementById(id).textContent = {json.dumps(NO_PLOTLY)};"
        " return; }"
        " Plotly.newPlot(id, figures[id].data, figures[id].layout,"
        " {displaylogo: false, responsive: true, modeBarButtonsToRemove: ['sendDataToCloud']}); }); })();"
    )


#: The report's script; static, so its CSP hash never changes.
RENDER_SCRIPT = render_script(FIGURES_ID)
#: Characters of an answer shown inside the reward-hack evidence lists (the examples show whole answers).
EVIDENCE_CHARS = 160


class _Charts:
    """The figures of one page, each given a div id (``prefix``, a number in order of appearance, a name)."""

    def __init__(self, prefix: str = "chart") -> None:
        self.prefix = prefix
        self.figures: dict[str, Any] = {}

    def div(self, figure: dict[str, Any], name: str) -> Safe:
        chart_id = f"{self.prefix}-{len(self.figures) + 1}-{name}"
        self.figures[chart_id] = figure
        return tag("div", id=chart_id, class_="chart", role="img", aria_label=name.replace("-", " "))


def _section(key: str, *children: object) -> Safe:
    return tag("section", tag("h2", SECTIONS[key]), *children, id=key, class_="wrap")


def _absent(text: str) -> Safe:
    return tag("p", text, class_="absent")


def _badge(text: str, color: str) -> Safe:
    return tag("span", text, class_="badge", style=f"background:{color};color:{theme.ink_on(color)}")


def _table(headers: tuple[str, ...], rows: list[tuple[object, ...]], numeric: tuple[int, ...] = (),
           class_: str | None = None) -> Safe:
    head = tag("tr", *(tag("th", header, class_="num" if index in numeric else None)
                       for index, header in enumerate(headers)))
    body = [tag("tr", *(tag("td", cell, class_="num" if index in numeric else None) for index, cell in enumerate(row)))
            for row in rows]
    return tag("table", tag("thead", head), tag("tbody", body), class_=class_)


def _facts(facts: tuple[Fact, ...]) -> Safe:
    return _table(("", "value", "note"), [(tag("b", fact.label), tag("span", fact.value, class_="mono"), fact.note)
                                          for fact in facts], class_="facts")


def _masthead(report: RunReport) -> Safe:
    run = report.run
    return tag("header", tag("div",
        tag("div", "Afterburn report", class_="eyebrow"),
        tag("h1", tag("span", class_="chip base"), run.base_reference, " → ",
            tag("span", class_="chip trained"), run.trained_reference),
        tag("div", f"run {run.run_id} · {run.status} · finished {wording.when(run.finished_at)} · "
                   f"report by afterburn {report.afterburn_version}", class_="meta"),
        class_="wrap"), class_="masthead")


def _nav() -> Safe:
    return tag("nav", tag("div", *(tag("a", title, href=f"#{key}") for key, title in SECTIONS.items()),
                          class_="wrap"), class_="toc")


def _severity(finding: run_view.ReportFinding) -> Safe:
    return _badge(finding.severity, theme.SEVERITY_COLORS.get(finding.severity, theme.MUTED))


def _recommendation(finding: run_view.ReportFinding) -> Safe | None:
    return tag("div", "→ ", finding.recommendation, class_="recommendation") if finding.recommendation else None


def _finding_item(finding: run_view.ReportFinding) -> Safe:
    return tag("li", _severity(finding), " ", tag("b", finding.title),
               tag("span", f" ({finding.source})", class_="detail"), tag("br"),
               tag("span", finding.detail, class_="detail"), _recommendation(finding))


def _summary(report: RunReport) -> Safe:
    cards = [tag("div", tag("div", fact.label, class_="label"),
                 tag("div", fact.value, class_="value", style=f"color:{fact.color}" if fact.color else None),
                 tag("div", fact.note, class_="note"), class_="card")
             for fact in run_view.summary_facts(report)]
    found = run_view.findings(report)
    top = found[: run_view.SUMMARY_FINDINGS]
    listing = (tag("ol", (_finding_item(finding) for finding in top), class_="findings") if top
               else _absent(run_view.NO_FINDINGS))
    more = (tag("p", tag("a", f"All {len(found)} findings", href="#findings"), class_="note")
            if len(found) > len(top) else None)
    return _section("summary", tag("p", tag("span", class_="chip base"), f"{theme.BASE_LABEL}  ",
                                   tag("span", class_="chip trained"), theme.TRAINED_LABEL,
                                   " — the two colours every chart uses.", class_="lead"),
                    tag("div", cards, class_="cards"), tag("h3", "Top findings"), listing, more)


def _findings(report: RunReport) -> Safe:
    found = run_view.findings(report)
    if not found:
        return _section("findings", _absent(run_view.NO_FINDINGS))
    rows = [(_severity(finding), finding.source, tag("b", finding.title),
             join(finding.detail, _recommendation(finding))) for finding in found]
    return _section("findings", tag("p", f"Every finding of the run, most severe first ({len(found)}).",
                                    class_="lead"), _table(("severity", "source", "finding", "detail"), rows))


def _weights(report: RunReport, charts: _Charts) -> Safe:
    weights = report.weights
    if weights is None:
        return _section("weights", _absent(run_view.absence(report, "weights")))
    concentration = weights.concentration
    parts: list[object] = [tag("p",
        "Profile ", _badge(weights.diagnosis.profile, theme.PROFILE_COLORS.get(weights.diagnosis.profile, theme.MUTED)),
        f" · {concentration.tensors_with_change} tensors changed · the top 10% hold "
        f"{wording.percent(concentration.top_decile_share)} of ‖ΔW‖² (Gini {concentration.gini:.2f})"
        f"{' · LoRA adapter' if weights.is_adapter else ''}", class_="lead")]
    grid = weights_view.layer_module_grid(weights)
    parts += [tag("h3", "Layer × module"),
              charts.div(html_charts.heatmap(grid), "layer-module-heatmap") if grid else _absent("No cell to show.")]
    heads = weights_view.head_grid(weights)
    parts += [tag("h3", "Attention heads"),
              charts.div(html_charts.heatmap(heads), "head-heatmap") if heads is not None
              else _absent(weights_view.heads_note(weights))]
    spectra = weights_view.spectra(weights)
    parts.append(tag("h3", "Singular-value spectra of ΔW"))
    if spectra:
        parts += [tag("p", f"The {len(spectra)} most changed matrices; a steep drop means a low-rank change. "
                           f"Top {weights.spectrum_top_k} values per tensor, "
                           f"{'exact' if weights.exact else 'randomized with an error bound'}.", class_="note"),
                  charts.div(html_charts.spectra(spectra), "spectra")]
    else:
        parts.append(_absent("No tensor has a spectrum (only 1-D or unpaired tensors changed)."))
    rows = [(tag("span", cells[0], class_="mono"), *cells[1:])
            for cells in map(weights_view.tensor_cells, weights_view.top_tensors(weights))]
    parts += [tag("h3", "Most changed tensors"), _table(weights_view.TENSOR_COLUMNS, rows, numeric=weights_view.TENSOR_NUMERIC)]
    return _section("weights", *parts, _experts(weights))


def _experts(weights: WeightDiffResult) -> Safe | None:
    """The MoE layer whose expert moved most, as its experts table; nothing for a dense model."""
    view = weights_detail.experts(weights.experts)
    if view is None:
        return None
    layer = view.layers[view.default]
    rows = [(cells[0], *cells[1:5], tag("span", cells[5], class_="mono"), *cells[6:])
            for cells in weights_detail.expert_cells(layer)]
    return join(tag("h3", f"Experts · layer {layer.layer}"), tag("p", view.reading, class_="note"),
                tag("p", layer.reading, class_="note"),
                _table(weights_detail.EXPERT_COLUMNS, rows, numeric=weights_detail.EXPERT_NUMERIC))


def _behaviour(report: RunReport, charts: _Charts) -> Safe:
    behaviour = report.behaviour
    if behaviour is None:
        return _section("behaviour", _absent(run_view.absence(report, "behaviour")))
    parts: list[object] = [tag("p", f"{behaviour_view.significance(behaviour)}; "
                                    f"{behaviour_view.SIGNIFICANT_MARK.strip()} marks them in the charts.",
                               class_="lead")]
    lengths = behaviour_view.median_lengths(behaviour)
    length_charts = [charts.div(html_charts.paired_bars(lengths, axis_title="median output tokens", rate=False),
                                "median-lengths")]
    if report.generations is not None:
        length_charts.append(charts.div(html_charts.length_histogram(report.generations), "length-histogram"))
    parts += [tag("h3", "Answer length"), tag("div", length_charts, class_="grid2")]
    for suite, stats in behaviour.suites.items():
        parts += [tag("h3", f"Strategy and formats · {suite}"), tag("div",
            charts.div(html_charts.paired_bars(behaviour_view.strategy_shares(stats.overall), axis_title="share of answers",
                                               rate=True), f"strategy-{len(charts.figures)}"),
            charts.div(html_charts.paired_bars(behaviour_view.format_rates(stats.overall), axis_title="rate of answers",
                                               rate=True), f"formats-{len(charts.figures)}"),
            class_="grid2")]
    rows = behaviour_view.shift_rows(behaviour)
    significant = [row.cells() for row in rows if row.significant]
    every = [(*row.cells(), "yes" if row.significant else "no") for row in rows]
    parts += [tag("h3", behaviour_view.suite_tests_title(behaviour, significant_only=True)),
              _table(behaviour_view.SHIFT_COLUMNS, significant, numeric=behaviour_view.SHIFT_NUMERIC) if significant
              else _absent("No test is significant."),
              tag("details", tag("summary", behaviour_view.suite_tests_title(behaviour, significant_only=False)),
                  _table((*behaviour_view.SHIFT_COLUMNS, "significant"), every, numeric=behaviour_view.SHIFT_NUMERIC))]
    return _section("behaviour", *parts)


def _detector_card(detector: DetectorResult, charts: _Charts) -> Safe:
    title = detector_title(detector.name)
    status = (_badge(detector.band, theme.BAND_COLORS.get(detector.band, theme.MUTED)) if detector.available
              else _badge("not available", theme.UNAVAILABLE_COLOR))
    return tag("div",
               charts.div(html_charts.gauge(detector.score if detector.available else None, detector.band, title),
                          f"gauge-{detector.name}"),
               tag("p", status, " ", "flagged" if detector.flagged else "not flagged"),
               tag("p", detector.summary if detector.available else detector.reason, class_="note"),
               class_="detector")


def _detector_evidence(report: RunReport, detector: DetectorResult) -> Safe | None:
    """The prompts a detector cites (shown) and the statistics behind its score (folded: there can be dozens)."""
    if not detector.examples and not detector.statistics:
        return None
    # A result shown without its run (a notebook) has no generations to quote: the links alone.
    cited = ([tag("li", tag("span", link, class_="mono"), ": ", prompt, tag("br"),
                  tag("span", "→ ", answer, class_="mono"))
              for link, prompt, answer in reward_view.evidence(report.generations, detector.examples, EVIDENCE_CHARS)]
             if report.generations is not None
             else [tag("li", tag("span", link, class_="mono")) for link in detector.examples])
    return tag("div",
               tag("h3", detector_title(detector.name)),
               tag("ul", cited, class_="evidence") if cited else tag("p", "No prompt cited.", class_="note"),
               (tag("details", tag("summary", f"The {wording.plural(len(detector.statistics), 'statistic')} behind "
                                              "the score"),
                    _table(reward_view.STATISTIC_COLUMNS, reward_view.statistic_rows(detector),
                           numeric=reward_view.STATISTIC_NUMERIC, class_="statistics"))
                if detector.statistics else None))


def _reward_hack(report: RunReport, charts: _Charts) -> Safe:
    result = report.reward_hack
    if result is None:
        return _section("reward_hack", _absent(run_view.absence(report, "reward_hack")))
    composite = result.composite
    weights = reward_view.weight_line(result)
    head = tag("div",
               charts.div(html_charts.gauge(composite.score, composite.band, "Composite risk", height=240),
                          "gauge-composite"),
               tag("div", tag("p", _badge(composite.band, theme.BAND_COLORS.get(composite.band, theme.MUTED)),
                              f" composite {composite.score:.0f} / 100 for method {result.method}"),
                   tag("p", f"Weights: {weights} ({composite.weights_source}).", class_="note")),
               class_="composite")
    detectors = reward_view.detectors(result)
    cards = tag("div", (_detector_card(detector, charts) for detector in detectors), class_="grid4")
    return _section("reward_hack", head, cards, (_detector_evidence(report, detector) for detector in detectors))


def _token(text: str) -> Safe:
    return tag("span", text, class_="mono token")


def _patchscope(table: AdlTable) -> Safe | None:
    """The tokens that persist across patchscope scales, and every scale's list folded; nothing if none was read."""
    if not table.patchscope:
        return None
    persistent = (tag("div", f"{parts_of.PATCHSCOPE_NOTE}: ", (tag("span", token) for token in table.persistent),
                      class_="tokens") if table.persistent
                  else tag("p", f"{parts_of.PATCHSCOPE_NOTE}: none.", class_="note"))
    scales = [(f"{scale:g} × mean norm", join(tag("span", token) for token in tokens)) for scale, tokens in table.patchscope]
    return join(persistent, tag("details", tag("summary", "Patchscope tokens by scale"),
                                _table(("scale", "tokens"), scales, class_="tokens")))


def _internals(report: RunReport, charts: _Charts) -> Safe:
    if report.internals is None:
        return _section("internals", _absent(run_view.absence(report, "internals")))
    view = internals_view(report.internals)
    numeric = tuple(range(len(view.curves) + 1))
    parts: list[object] = [
        tag("p", view.reading, class_="lead"), tag("p", view.method_line, " · ", view.cost_line, class_="note"),
        tag("h3", "Per layer, neutral corpus"), charts.div(html_charts.layer_curves(view.layers, view.curves),
                                                           "layer-curves"),
        tag("details", tag("summary", "Per-layer values"),
            _table(parts_of.layer_columns(view), parts_of.layer_rows(view), numeric=numeric)),
        tag("h3", "Input sets"),
        _table(parts_of.INPUT_SET_COLUMNS, [parts_of.input_set_cells(row) for row in view.input_sets],
               numeric=parts_of.INPUT_SET_NUMERIC),
    ]
    for table in parts_of.averaged_tables(view):
        parts += [tag("h3", f"Activation-difference lens · {table.title}"),
                  tag("p", f"‖δ‖ = {table.norm:.3g}. {parts_of.RELEVANCE_NOTE}", class_="note"),
                  _table(parts_of.TOKEN_COLUMNS, parts_of.token_rows(table, _token), numeric=parts_of.TOKEN_NUMERIC),
                  _patchscope(table)]
    if view.lenses:
        lens = view.lenses[0]
        parts += [tag("h3", "Differential logit lens · ", tag("span", lens.label, class_="mono")),
                  tag("p", "KL(post-trained ‖ base) between the two models' logit lenses at each layer and position; "
                           "hover a cell for each model's top token there.", class_="note"),
                  charts.div(html_charts.lens_heatmap(lens), "lens-heatmap")]
    return _section("internals", *parts, _causal(report.internals, charts))


def _causal(result: InternalsResult, charts: _Charts) -> Safe:
    """Steering, layer localization and amplification as ``causal_view`` words them, or why each is absent."""
    view = causal_view(result)
    parts: list[object] = []
    for part, title in PART_TITLES.items():
        parts.append(tag("h3", title))
        if part in view.notes:
            parts.append(_absent(view.notes[part]))
        elif part == "steering":
            parts += [tag("p", view.steering.reading), tag("p", view.steering.method_line, class_="note"),
                      _causal_table(view.steering.trials), _causal_table(view.steering.metrics)]
        elif part == "localization":
            parts += [tag("p", view.localization.reading), tag("p", LOCALIZATION_NOTE, class_="note"),
                      charts.div(html_charts.localization_bars(view.localization), "localization-bars"),
                      _causal_table(view.localization.table)]
        else:
            parts += [tag("p", view.amplification.reading),
                      tag("p", view.amplification.sample_line, " ", AMPLIFICATION_NOTE, class_="note"),
                      charts.div(html_charts.amplification_curves(view.amplification), "amplification-curves"),
                      _causal_table(view.amplification.table)]
    return join(*parts)


def _causal_table(table: CausalTable) -> Safe:
    return _table(table.columns, list(table.rows), numeric=table.numeric)


def _example(example: run_view.Example) -> Safe:
    """One prompt and both answers side by side, with where they diverge most."""
    tokens = (tag("div", "Diverges most at ",
                  (tag("span", spell_invisible(repr(token.token), keep=""), f" KL {token.kl:.2f}")
                   for token in example.top_tokens[:5]), class_="tokens")
              if example.top_tokens else None)
    sides = [tag("div", tag("span", class_=f"chip {side}"), tag("b", name),
                 f" · {completion.n_tokens} tokens · stopped at {completion.stop_reason}",
                 tag("pre", spell_invisible(completion.text), class_="output"), class_=f"side {side}")
             for side, name, completion in (("base", theme.BASE_LABEL, example.base),
                                            ("trained", theme.TRAINED_LABEL, example.trained))]
    return tag("div",
               tag("div", tag("b", example.link, class_="mono"), " · ", example.prompt.category, " · ",
                   example.why, class_="head"),
               tag("div", tag("b", "Prompt"), tag("pre", spell_invisible(example.prompt.text), class_="output"),
                   tokens, class_="prompt"),
               tag("div", sides, class_="grid2"), class_="example")


def _examples(report: RunReport) -> Safe:
    chosen = run_view.examples(report)
    if not chosen:
        return _section("examples", _absent(run_view.absence(report, "generations")))
    blocks = [_example(example) for example in chosen]
    note = ("Ranked by mean token-level KL of the post-trained answer" if report.token_kl is not None
            else f"Ranked by length change ({run_view.absence(report, 'token_kl')})")
    return _section("examples", tag("p", f"{note}; the {len(chosen)} most diverged of "
                                         f"{len(report.generations.prompts)} prompts.", class_="lead"), blocks)


def _provenance(report: RunReport) -> Safe:
    return _section("provenance", *((tag("h3", group), _facts(facts)) for group, facts in run_view.provenance(report)))


def render_html(report: RunReport) -> str:
    """The report as one self-contained HTML document."""
    charts = _Charts()
    body = join(
        _masthead(report), _nav(),
        tag("main", _summary(report), _findings(report), _weights(report, charts), _behaviour(report, charts),
            _reward_hack(report, charts), _internals(report, charts), _examples(report), _provenance(report)),
        tag("footer", tag("div", f"Written by afterburn {report.afterburn_version} on "
                                 f"{wording.when(report.generated_at)}. Self-contained: charts by the embedded "
                                 "plotly.js, nothing is fetched.", class_="wrap")),
        json_block(charts.figures, FIGURES_ID),
    )
    return page(title=f"Afterburn report: {run_view.title_line(report)}", body=body,
                scripts=(get_plotlyjs(), RENDER_SCRIPT))


class Fragment(NamedTuple):
    """Report sections as a piece of a notebook page; ``charted``: it draws charts (so plotly.js was embedded
    if asked for)."""

    html: str
    charted: bool


def render_fragment(report: RunReport, sections: tuple[str, ...], *, include_plotly: bool) -> Fragment:
    """Some ``SECTIONS`` of the report (by key, in order) as an HTML fragment for a notebook cell, drawn exactly
    as in the report; ``include_plotly`` embeds plotly.js (~4.8 MB) if it draws charts: one output per page
    needs it.

    ``report`` needs only the results the sections read (``reports.notebook`` shows a result without its run).
    Ids are unique per fragment, so any number of them can share a page.
    """
    charts = _Charts(prefix=f"afterburn-{uuid.uuid4().hex[:12]}")
    drawn = {"summary": lambda: _summary(report), "findings": lambda: _findings(report),
             "weights": lambda: _weights(report, charts), "behaviour": lambda: _behaviour(report, charts),
             "reward_hack": lambda: _reward_hack(report, charts), "internals": lambda: _internals(report, charts),
             "examples": lambda: _examples(report), "provenance": lambda: _provenance(report)}
    return _fragment(join(drawn[key]() for key in sections), charts, include_plotly)


def render_example_fragment(example: run_view.Example) -> str:
    """One prompt and both answers side by side, as the report's examples show them, for a notebook cell."""
    return _fragment(_example(example), _Charts(), include_plotly=False).html


def _fragment(body: Safe, charts: _Charts, include_plotly: bool) -> Fragment:
    if not charts.figures:
        return Fragment(fragment(body=body), charted=False)
    figures_id = f"{charts.prefix}-figures"
    return Fragment(fragment(body=join(body, json_block(charts.figures, figures_id)),
                             scripts=(*((get_plotlyjs(),) if include_plotly else ()), render_script(figures_id))),
                    charted=True)
