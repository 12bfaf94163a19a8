"""The Markdown report: summary, findings and the top tables, clean on GitHub.

The same selection as every format (``digest``), as GitHub-flavoured
Markdown: headings, lists and pipe tables only, no raw HTML. Every string a
model, a tokenizer, a checkpoint, a suite file or a user wrote goes through
``escape`` — HTML's ``& < >`` as character references, every other character
Markdown could read as syntax backslash-escaped, newlines shown as ↵ so a
table cell stays one line, and bare URLs broken so nothing becomes a link.
Charts are left to the HTML and PDF; their numbers are here as tables.
"""

from __future__ import annotations

import re

from afterburn_core.analyses import detector_title
from afterburn_core.reports import internals_parts as parts_of
from afterburn_core.views.internals_causal import (
    AMPLIFICATION_NOTE,
    LOCALIZATION_NOTE,
    PART_TITLES,
    CausalTable,
    causal_view,
)
from afterburn_core.views import weights_detail
from afterburn_core.internals.types import InternalsResult
from afterburn_core.views.internals import internals_view
from afterburn_core.weights.types import WeightDiffResult
from afterburn_core.views import run as run_view, theme, wording, behaviour as behaviour_view, reward_hack as reward_view, weights as weights_view
from afterburn_core.reports.bundle import RunReport
from afterburn_core.views.run import SECTIONS, Fact
from afterburn_core.views.text import spell_invisible

# Every model string lands inline (a cell, after a label; newlines become ↵), so line-start syntax
# (headings, lists, quotes) cannot trigger; what can is escaped: emphasis and strikethrough, code
# spans, link and image brackets, table pipes, GitHub's $maths$, and the backslash itself.
_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
_REFERENCES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
# GFM links bare URLs and e-mail addresses; an invisible word joiner (U+2060) between a scheme and
# "://", "www" and ".", or before "@" keeps the text as it looks and stops the link.
_WORD_JOINER = "\u2060"
_AUTOLINKS = (
    (re.compile(r"(?i)\b(https?|ftp)(?=:)"), rf"\1{_WORD_JOINER}"),
    (re.compile(r"(?i)\b(www)(?=\.)"), rf"\1{_WORD_JOINER}"),
    (re.compile(r"@"), f"{_WORD_JOINER}@"),
)
#: Characters of a model's answer shown in a table cell of the reward-hack evidence.
EVIDENCE_CHARS = 120


def escape(text: object) -> str:
    """``text`` as Markdown that shows it literally, on one line (newlines become ↵)."""
    escaped = _SPECIAL.sub(r"\\\1", spell_invisible(str(text), keep="\n"))
    for char, reference in _REFERENCES:
        escaped = escaped.replace(char, reference)
    for pattern, replacement in _AUTOLINKS:
        escaped = pattern.sub(replacement, escaped)
    return escaped.replace("\n", " ↵ ")


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]], numeric: tuple[int, ...] = ()) -> str:
    """A pipe table; cells must already be escaped (``escape``) or be this module's own text."""
    align = tuple("---:" if index in numeric else "---" for index in range(len(headers)))
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _facts(facts: tuple[Fact, ...]) -> str:
    return table(("", "value", "note"), [(f"**{escape(fact.label)}**", escape(fact.value), escape(fact.note))
                                         for fact in facts])


def _summary(report: RunReport) -> list[str]:
    found = run_view.findings(report)
    lines = [f"## {SECTIONS['summary']}", "", _facts(run_view.summary_facts(report)), "", "**Top findings**", ""]
    if not found:
        lines.append(run_view.NO_FINDINGS)
    for number, finding in enumerate(found[: run_view.SUMMARY_FINDINGS], start=1):
        lines.append(f"{number}. **{escape(finding.title)}** ({finding.severity}, {finding.source}): "
                     f"{escape(finding.detail)}")
    return lines


def _findings(report: RunReport) -> list[str]:
    found = run_view.findings(report)
    if not found:
        return [f"## {SECTIONS['findings']}", "", run_view.NO_FINDINGS]
    rows = [(finding.severity, finding.source, escape(finding.title), escape(finding.detail),
             escape(finding.recommendation)) for finding in found]
    return [f"## {SECTIONS['findings']}", "",
            table(("severity", "source", "finding", "detail", "recommendation"), rows)]


def _weights(report: RunReport) -> list[str]:
    weights = report.weights
    lines = [f"## {SECTIONS['weights']}", ""]
    if weights is None:
        return [*lines, run_view.absence(report, "weights")]
    concentration = weights.concentration
    lines += [(f"Profile **{escape(weights.diagnosis.profile)}**: {concentration.tensors_with_change} tensors "
              f"changed; the top 10% hold {wording.percent(concentration.top_decile_share)} of ‖ΔW‖² "
              f"(Gini {concentration.gini:.2f})."), ""]
    grid = weights_view.layer_module_grid(weights)
    if grid is not None:
        rows = [(escape(row), *("–" if value is None else f"{value:.3f}" for value in values))
                for row, values in zip(grid.rows, grid.values)]
        lines += [f"### Layer × module: {grid.title}", "",
                  table((grid.row_title, *map(escape, grid.columns)), rows, tuple(range(1, len(grid.columns) + 1))),
                  ""]
    lines += [f"Attention heads: {escape(weights_view.heads_note(weights))}", ""]
    rows = [tuple(map(escape, weights_view.tensor_cells(tensor))) for tensor in weights_view.top_tensors(weights)]
    lines += ["### Most changed tensors", "", table(weights_view.TENSOR_COLUMNS, rows, weights_view.TENSOR_NUMERIC)]
    return lines + _experts(weights)


def _experts(weights: WeightDiffResult) -> list[str]:
    """The MoE layer whose expert moved most, as its experts table; nothing for a dense model."""
    view = weights_detail.experts(weights.experts)
    if view is None:
        return []
    layer = view.layers[view.default]
    rows = [tuple(map(escape, cells)) for cells in weights_detail.expert_cells(layer)]
    return ["", f"### Experts: layer {layer.layer}", "", escape(view.reading), "", escape(layer.reading), "",
            table(weights_detail.EXPERT_COLUMNS, rows, weights_detail.EXPERT_NUMERIC)]


def _paired_table(first: str, items: tuple[behaviour_view.Paired, ...], *, rate: bool) -> str:
    shown = wording.percent if rate else (lambda value: f"{value:.3g}")
    return table((first, theme.BASE_LABEL, theme.TRAINED_LABEL, "significant"),
                 [(escape(item.label), shown(item.base), shown(item.trained), "yes" if item.significant else "no")
                  for item in items], (1, 2))


def _behaviour(report: RunReport) -> list[str]:
    behaviour = report.behaviour
    lines = [f"## {SECTIONS['behaviour']}", ""]
    if behaviour is None:
        return [*lines, run_view.absence(report, "behaviour")]
    lines += [f"{escape(behaviour_view.significance(behaviour))}.", "",
              "### Median output tokens", "", _paired_table("group", behaviour_view.median_lengths(behaviour), rate=False), ""]
    for suite, stats in behaviour.suites.items():
        lines += [f"### Strategy and formats: {escape(suite)}", "",
                  _paired_table("strategy", behaviour_view.strategy_shares(stats.overall), rate=True), "",
                  _paired_table("format", behaviour_view.format_rates(stats.overall), rate=True), ""]
    significant = [tuple(map(escape, row.cells())) for row in behaviour_view.shift_rows(behaviour) if row.significant]
    lines += [f"### {behaviour_view.suite_tests_title(behaviour, significant_only=True)}", ""]
    if significant:
        lines.append(table(behaviour_view.SHIFT_COLUMNS, significant, behaviour_view.SHIFT_NUMERIC))
    else:
        lines.append("No test is significant.")
    return lines


def _reward_hack(report: RunReport) -> list[str]:
    result = report.reward_hack
    lines = [f"## {SECTIONS['reward_hack']}", ""]
    if result is None:
        return [*lines, run_view.absence(report, "reward_hack")]
    composite = result.composite
    lines += [(f"Composite risk **{composite.score:.0f} / 100 ({escape(composite.band)})** for method "
              f"{escape(result.method)}; weights from {escape(composite.weights_source)}."), ""]
    rows = [(escape(detector_title(detector.name)), f"{detector.score:.0f}",
             escape(detector.band) if detector.available else "not available", "yes" if detector.flagged else "no",
             escape(detector.summary if detector.available else detector.reason))
            for detector in reward_view.detectors(result)]
    lines += [table(("detector", "score", "band", "flagged", "summary"), rows, (1,)), ""]
    evidence = [
        (escape(detector_title(detector.name)), escape(link), escape(prompt),
         escape(answer))
        for detector in reward_view.detectors(result)
        for link, prompt, answer in reward_view.evidence(report.generations, detector.examples, EVIDENCE_CHARS)
    ]
    if evidence:
        lines += ["### Evidence", "", table(("detector", "prompt", "prompt text", f"{theme.TRAINED_LABEL} answer"),
                                            evidence)]
    return lines


def _internals(report: RunReport) -> list[str]:
    lines = [f"## {SECTIONS['internals']}", ""]
    if report.internals is None:
        return [*lines, run_view.absence(report, "internals")]
    view = internals_view(report.internals)
    lines += [escape(view.reading), "", f"{escape(view.method_line)}; {escape(view.cost_line)}.", "",
              "### Per layer, neutral corpus", "",
              table(tuple(map(escape, parts_of.layer_columns(view))), parts_of.layer_rows(view),
                    tuple(range(1, len(view.curves) + 1))), "",
              "### Input sets", "",
              table(parts_of.INPUT_SET_COLUMNS, [tuple(map(escape, parts_of.input_set_cells(row)))
                                                 for row in view.input_sets], parts_of.INPUT_SET_NUMERIC)]
    for adl in parts_of.averaged_tables(view):
        lines += ["", f"### Activation-difference lens: {escape(adl.title)}", "",
                  f"‖δ‖ = {adl.norm:.3g}. {escape(parts_of.RELEVANCE_NOTE)}", "",
                  table(parts_of.TOKEN_COLUMNS, parts_of.token_rows(adl, _token), parts_of.TOKEN_NUMERIC)]
        if adl.patchscope:
            persistent = ", ".join(map(_token, adl.persistent)) or "none"
            lines += ["", f"{escape(parts_of.PATCHSCOPE_NOTE)}: {persistent}."]
    return [*lines, *_causal(report.internals)]


def _causal(result: InternalsResult) -> list[str]:
    """Steering, layer localization and amplification as ``causal_view`` words them, or why each is absent."""
    view = causal_view(result)
    lines: list[str] = []
    for part, title in PART_TITLES.items():
        lines += ["", f"### {title}", ""]
        if part in view.notes:
            lines.append(escape(view.notes[part]))
        elif part == "steering":
            lines += [escape(view.steering.reading), "", escape(view.steering.method_line), "",
                      _escaped_table(view.steering.trials), "", _escaped_table(view.steering.metrics)]
        elif part == "localization":
            lines += [escape(view.localization.reading), "", escape(LOCALIZATION_NOTE), "",
                      _escaped_table(view.localization.table)]
        else:
            lines += [escape(view.amplification.reading), "",
                      f"{escape(view.amplification.sample_line)} {escape(AMPLIFICATION_NOTE)}", "",
                      _escaped_table(view.amplification.table)]
    return lines


def _escaped_table(causal: CausalTable) -> str:
    """``table`` of cells that may hold a stored result's strings (metric, detector names), each escaped."""
    return table(tuple(map(escape, causal.columns)), [tuple(map(escape, row)) for row in causal.rows],
                 causal.numeric)


def _token(token: str) -> str:
    """A token as a code-free literal: escaped, quoted so a leading space shows."""
    return f"“{escape(token)}”"


def _examples(report: RunReport) -> list[str]:
    chosen = run_view.examples(report)
    lines = [f"## {SECTIONS['examples']}", ""]
    if not chosen:
        return [*lines, run_view.absence(report, "generations")]
    for number, example in enumerate(chosen, start=1):
        tokens = ", ".join(f"{escape(repr(token.token))} (KL {token.kl:.2f})" for token in example.top_tokens[:5])
        lines += [f"### {number}. {escape(example.link)}", "", f"{escape(example.prompt.category)}; {example.why}.",
                  "", f"**Prompt:** {escape(example.prompt.text)}", ""]
        if tokens:
            lines += [f"Diverges most at {tokens}.", ""]
        lines += [table(("", theme.BASE_LABEL, theme.TRAINED_LABEL), [
            ("answer", escape(example.base.text), escape(example.trained.text)),
            ("tokens", f"{example.base.n_tokens} ({example.base.stop_reason})",
             f"{example.trained.n_tokens} ({example.trained.stop_reason})"),
        ]), ""]
    return lines


def _provenance(report: RunReport) -> list[str]:
    lines = [f"## {SECTIONS['provenance']}"]
    for group, facts in run_view.provenance(report):
        lines += ["", f"### {group}", "", _facts(facts)]
    return lines


def render_markdown(report: RunReport) -> str:
    """The report as one GitHub-flavoured Markdown document."""
    run = report.run
    head = [f"# Afterburn report: {escape(run.base_reference)} → {escape(run.trained_reference)}", "",
            (f"Run {escape(run.run_id)} · {run.status} · finished {wording.when(run.finished_at)} · "
            f"written by afterburn {escape(report.afterburn_version)} on {wording.when(report.generated_at)}."), ""]
    sections = (_summary, _findings, _weights, _behaviour, _reward_hack, _internals, _examples, _provenance)
    body = [line for section in sections for line in (*section(report), "")]
    return "\n".join(head + body).rstrip() + "\n"
