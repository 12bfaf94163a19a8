"""The PDF report (reportlab): the summary and the findings, then charts and tables.

The first page holds the two models, the summary cards beside the
composite-risk gauge, and the findings (most severe first, each once: the
table runs on to the next pages); the sections that follow (``run_view.SECTIONS``)
hold the weight heatmaps and spectra, behaviour bars, reward-hack gauges with
their evidence, internals (per-layer curves and table, the activation-difference
lens's averaged tables; the causal half as ``views.internals_causal`` words it: steering's trials and
metric tables, localization bars and shares per block, amplification rates per α, or why each is absent),
the most diverged prompts side by side, and provenance.
Charts are reportlab drawings (``pdf_charts``), not images. Every model or
user string goes through ``pdf_fonts.markup`` (glyph fallback, then XML
escaping) before it reaches a ``Paragraph``; text of this module through
``pdf_fonts.drawable``. Answers longer than ``ANSWER_CHARS`` are cut (the HTML
and JSON hold them whole) so one table row always fits on a page. A word too
wide for its column (a tensor name, a prompt id, a test name) is broken into
lines after its dots, underscores, slashes and hyphens (``_wrappable``), never
inside a name's part.
"""

from __future__ import annotations

import html
import io
import re

from reportlab.lib.colors import HexColor
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from afterburn_core.reports import internals_parts as parts_of, pdf_charts
from afterburn_core.views.internals_causal import (
    AMPLIFICATION_COLUMNS,
    AMPLIFICATION_NOTE,
    LOCALIZATION_COLUMNS,
    LOCALIZATION_NOTE,
    PART_TITLES,
    STEERING_COLUMNS,
    TRIAL_COLUMNS,
    CausalTable,
    causal_view,
)
from afterburn_core.views import run as run_view, theme, wording, behaviour as behaviour_view, reward_hack as reward_view, weights as weights_view, weights_detail
from afterburn_core.reports.bundle import RunReport
from afterburn_core.views.run import SECTIONS, Fact
from afterburn_core.reports.pdf_fonts import drawable, fonts, markup
from afterburn_core.analyses import detector_title
from afterburn_core.internals.types import InternalsResult
from afterburn_core.views.internals import internals_view
from afterburn_core.weights.types import WeightDiffResult

MARGIN = 16 * mm
WIDTH = A4[0] - 2 * MARGIN
#: Characters of an answer printed in the examples; longer ones are cut with a note.
ANSWER_CHARS = 1500
EVIDENCE_CHARS = 140
#: reportlab's default left and right padding of a table cell (points): a cell's text is this much narrower.
CELL_PADDING = 12
#: The summary cards' share of the first page's width; the composite gauge takes the rest.
CARDS_SHARE = 0.7
#: Where a word too wide for its column may break: after a run of dots, underscores, slashes or hyphens, but
#: never inside a number ("100.0%" stays whole; "layers.2" may break after "2.").
_BREAK_AFTER = re.compile(r"(?<=[._/-])(?=[^._/\-\d])")
_TAG = re.compile(r"(<[^>]*>)")
_WORD = re.compile(r"\S+")


class Styles:
    """Paragraph styles on the report's fonts (built after the fonts are registered)."""

    def __init__(self) -> None:
        family, bold = fonts().family, fonts().bold
        ink, muted = HexColor(theme.INK), HexColor(theme.MUTED)
        self.body = ParagraphStyle("body", fontName=family, fontSize=9, leading=12.5, textColor=ink)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=7.5, leading=9.5)
        self.number = ParagraphStyle("number", parent=self.small, alignment=TA_RIGHT)
        self.muted = ParagraphStyle("muted", parent=self.body, textColor=muted)
        self.mono = ParagraphStyle("mono", parent=self.small, fontName=fonts().mono, fontSize=7.5, leading=9.5)
        self.cell_head = ParagraphStyle("cell_head", parent=self.small, fontName=bold)
        self.cell_head_number = ParagraphStyle("cell_head_number", parent=self.cell_head, alignment=TA_RIGHT)
        self.title = ParagraphStyle("title", fontName=bold, fontSize=26, leading=32, textColor=HexColor(theme.ACCENT))
        self.subtitle = ParagraphStyle("subtitle", fontName=family, fontSize=14, leading=19, textColor=ink)
        # No keepWithNext: a section's CondPageBreak keeps room under its heading, and keeping the heading with
        # a table longer than the page pushed both to the next page (the first page's findings).
        self.h1 = ParagraphStyle("h1", fontName=bold, fontSize=16, leading=20, spaceBefore=14, spaceAfter=8,
                                 textColor=HexColor(theme.ACCENT))
        self.h2 = ParagraphStyle("h2", fontName=bold, fontSize=11, leading=14, spaceBefore=10, spaceAfter=5,
                                 textColor=ink, keepWithNext=1)
        self.card_label = ParagraphStyle("card_label", parent=self.small, textColor=muted)
        self.card_value = ParagraphStyle("card_value", fontName=bold, fontSize=15, leading=19, textColor=ink)


def paragraph(text: str, style: ParagraphStyle, width: float = WIDTH) -> Paragraph:
    """A paragraph of this module's markup (model text inside it already went through ``markup``), set in
    ``width`` points."""
    return Paragraph(_wrappable(drawable(text, keep=""), style, width), style)


def _wrappable(text: str, style: ParagraphStyle, width: float) -> str:
    """``text`` (paragraph markup) with every word wider than ``width`` cut into lines after its dots,
    underscores, slashes and hyphens: reportlab breaks lines only at spaces and cuts a longer word at
    whatever letter fills the line ("post_att ention"). Measured in the bold face (the widest a cell uses)."""
    font = style.fontName if style.fontName == fonts().mono else fonts().bold

    def fits(piece: str) -> bool:
        return stringWidth(html.unescape(piece), font, style.fontSize) <= width

    def wrapped(word: str) -> str:
        if fits(word):
            return word
        lines = [""]
        for piece in _BREAK_AFTER.split(word):
            if lines[-1] and not fits(lines[-1] + piece):
                lines.append(piece)
            else:
                lines[-1] += piece
        return "<br/>".join(lines)

    return "".join(part if _TAG.fullmatch(part) else _WORD.sub(lambda word: wrapped(word.group()), part)
                   for part in _TAG.split(text))


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]], styles: Styles, widths: tuple[float, ...],
           numeric: tuple[int, ...] = ()) -> Table:
    """A table of markup cells, wrapped to ``widths`` (fractions of the page width)."""
    inner = [WIDTH * fraction - CELL_PADDING for fraction in widths]
    cells = [[paragraph(header, styles.cell_head_number if index in numeric else styles.cell_head, inner[index])
              for index, header in enumerate(headers)]]
    cells += [[paragraph(cell, styles.number if index in numeric else styles.small, inner[index])
               for index, cell in enumerate(row)] for row in rows]
    drawn = Table(cells, colWidths=[WIDTH * fraction for fraction in widths], repeatRows=1)
    commands = [
        ("BACKGROUND", (0, 0), (-1, 0), HexColor(theme.PANEL)),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, HexColor(theme.RULE)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    drawn.setStyle(TableStyle(commands))
    return drawn


def _facts(facts: tuple[Fact, ...], styles: Styles) -> Table:
    return table(("", "value", "note"), [(f"<b>{markup(fact.label)}</b>", markup(fact.value),
                                           markup(fact.note)) for fact in facts], styles, (0.24, 0.44, 0.32))


def _section(key: str, styles: Styles) -> list:
    # A section opens on a new page unless the page still has room for its heading and a first chart.
    return [CondPageBreak(90 * mm), paragraph(SECTIONS[key], styles.h1)]


def _findings(found: tuple[run_view.ReportFinding, ...], styles: Styles) -> Flowable:
    """Findings as a table (severity in its colour, recommendation in italics), or the line saying there are none."""
    if not found:
        return paragraph(run_view.NO_FINDINGS, styles.muted)
    severity = '<font color="{}"><b>{}</b></font>'
    rows = [(severity.format(theme.SEVERITY_COLORS.get(finding.severity, theme.MUTED), markup(finding.severity)),
             markup(finding.source), f"<b>{markup(finding.title)}</b>",
             markup(finding.detail) + (f"<br/><i>→ {markup(finding.recommendation)}</i>"
                                       if finding.recommendation else ""))
            for finding in found]
    return table(("severity", "source", "finding", "detail"), rows, styles, (0.1, 0.12, 0.3, 0.48))


def _title_page(report: RunReport, styles: Styles) -> list:
    """The two models, the run line, the summary cards and beside them the composite gauge (when there is one)."""
    run = report.run
    chip = '<font color="{}">■</font>'
    story = [Spacer(1, 10 * mm), paragraph("Afterburn report", styles.title), Spacer(1, 3 * mm),
             paragraph(f"{chip.format(theme.BASE_COLOR)} {markup(run.base_reference)}  →  "
                f"{chip.format(theme.TRAINED_COLOR)} {markup(run.trained_reference)}", styles.subtitle),
             Spacer(1, 2 * mm),
             paragraph(f"Run {markup(run.run_id)} · {markup(run.status)} · finished {wording.when(run.finished_at)} · "
                f"written by afterburn {markup(report.afterburn_version)} on {wording.when(report.generated_at)}",
                styles.muted),
             Spacer(1, 6 * mm), paragraph(SECTIONS["summary"], styles.h1)]
    gauge_width = WIDTH * (1 - CARDS_SHARE) if report.reward_hack is not None else 0.0
    card_width = (WIDTH - gauge_width) / 2
    text_width = card_width - 20  # the cards' left padding and a margin on the right
    cards = [[paragraph(markup(fact.label.upper()), styles.card_label, text_width),
              paragraph(f'<font color="{fact.color}">{markup(fact.value)}</font>' if fact.color else markup(fact.value),
                 styles.card_value, text_width),
              paragraph(markup(fact.note), styles.small, text_width)] for fact in run_view.summary_facts(report)]
    grid = Table([cards[index: index + 2] for index in range(0, len(cards), 2)], colWidths=[card_width] * 2)
    grid.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), HexColor(theme.PANEL)),
                              ("BOX", (0, 0), (-1, -1), 0.6, HexColor("#ffffff")),
                              ("INNERGRID", (0, 0), (-1, -1), 4, HexColor("#ffffff")),
                              ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 8),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 8), ("LEFTPADDING", (0, 0), (-1, -1), 10)]))
    if report.reward_hack is None:
        return [*story, grid]
    composite = report.reward_hack.composite
    beside = Table([[grid, pdf_charts.gauge(composite.score, composite.band, "Composite reward-hack risk",
                                            size=gauge_width - 8)]], colWidths=[WIDTH - gauge_width, gauge_width])
    beside.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("ALIGN", (1, 0), (1, 0), "CENTER"),
                                ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return [*story, beside]


def _weights(report: RunReport, styles: Styles) -> list:
    story = _section("weights", styles)
    weights = report.weights
    if weights is None:
        return [*story, paragraph(markup(run_view.absence(report, "weights")), styles.muted)]
    concentration = weights.concentration
    story.append(paragraph(f"Profile <b>{markup(weights.diagnosis.profile)}</b> · {concentration.tensors_with_change} "
                    f"tensors changed · the top 10% hold {wording.percent(concentration.top_decile_share)} of "
                    f"‖ΔW‖² (Gini {concentration.gini:.2f})", styles.body))
    for grid, heading in ((weights_view.layer_module_grid(weights), "Layer × module: relative change ‖ΔW‖/‖W‖"),
                          (weights_view.head_grid(weights), "Attention heads: relative change per head")):
        if grid is not None:
            story.append(KeepTogether([paragraph(heading, styles.h2), pdf_charts.heatmap(grid, WIDTH)]))
    if weights.heads is None:
        story.append(paragraph(markup(weights_view.heads_note(weights)), styles.muted))
    spectra = weights_view.spectra(weights)
    if spectra:
        story.append(KeepTogether([paragraph("Singular-value spectra of ΔW (most changed matrices)", styles.h2),
                                   pdf_charts.spectra(spectra, WIDTH)]))
    rows = [tuple(map(markup, weights_view.tensor_cells(tensor))) for tensor in weights_view.top_tensors(weights)]
    story += [paragraph("Most changed tensors", styles.h2),
              table(weights_view.TENSOR_COLUMNS, rows, styles, (0.46, 0.1, 0.08, 0.12, 0.13, 0.11),
                     numeric=weights_view.TENSOR_NUMERIC)]
    return story + _experts(weights, styles)


def _experts(weights: WeightDiffResult, styles: Styles) -> list:
    """The MoE layer whose expert moved most, as its experts table (as the other reports); nothing for a dense model."""
    view = weights_detail.experts(weights.experts)
    if view is None:
        return []
    layer = view.layers[view.default]
    rows = [tuple(map(markup, cells)) for cells in weights_detail.expert_cells(layer)]
    return [paragraph(f"Experts · layer {layer.layer:d}", styles.h2), paragraph(markup(view.reading), styles.body),
            paragraph(markup(layer.reading), styles.body),
            table(weights_detail.EXPERT_COLUMNS, rows, styles, (0.08, 0.11, 0.1, 0.11, 0.09, 0.33, 0.08, 0.1),
                   numeric=weights_detail.EXPERT_NUMERIC)]


def _behaviour(report: RunReport, styles: Styles) -> list:
    story = _section("behaviour", styles)
    behaviour = report.behaviour
    if behaviour is None:
        return [*story, paragraph(markup(run_view.absence(report, "behaviour")), styles.muted)]
    story += [paragraph(f"{markup(behaviour_view.significance(behaviour))}; "
                 f"{behaviour_view.SIGNIFICANT_MARK.strip()} marks them.", styles.body), Spacer(1, 3 * mm),
              pdf_charts.paired_bars(behaviour_view.median_lengths(behaviour), WIDTH, title="Median output tokens", rate=False)]
    for suite, stats in behaviour.suites.items():
        story += [Spacer(1, 3 * mm), KeepTogether([
            pdf_charts.paired_bars(behaviour_view.strategy_shares(stats.overall), WIDTH,
                                   title=f"Strategy mix · {suite}", rate=True),
            Spacer(1, 3 * mm),
            pdf_charts.paired_bars(behaviour_view.format_rates(stats.overall), WIDTH, title=f"Format rates · {suite}",
                                   rate=True)])]
    rows = [tuple(map(markup, row.cells())) for row in behaviour_view.shift_rows(behaviour) if row.significant]
    story.append(paragraph(markup(behaviour_view.suite_tests_title(behaviour, significant_only=True)), styles.h2))
    story.append(table(behaviour_view.SHIFT_COLUMNS, rows, styles, (0.12, 0.13, 0.23, 0.13, 0.13, 0.12, 0.14),
                        numeric=behaviour_view.SHIFT_NUMERIC) if rows else paragraph("No test is significant.", styles.muted))
    return story


def _reward_hack(report: RunReport, styles: Styles) -> list:
    story = _section("reward_hack", styles)
    result = report.reward_hack
    if result is None:
        return [*story, paragraph(markup(run_view.absence(report, "reward_hack")), styles.muted)]
    composite = result.composite
    detectors = reward_view.detectors(result)
    # Every gauge in one row, each as wide as its share of the page (six would overlap at their full size).
    size = min(pdf_charts.GAUGE_SIZE, WIDTH / (len(detectors) + 1))
    gauges = [pdf_charts.gauge(composite.score, composite.band, "Composite", size=size)]
    gauges += [pdf_charts.gauge(detector.score, detector.band, detector_title(detector.name),
                                available=detector.available, size=size)
               for detector in detectors]
    row = Table([gauges], colWidths=[WIDTH / len(gauges)] * len(gauges))
    row.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER")]))
    weights = markup(reward_view.weight_line(result))
    story += [paragraph(f"Composite <b>{composite.score:.0f} / 100 ({markup(composite.band)})</b> for method "
                 f"{markup(result.method)}; weights {weights} ({markup(composite.weights_source)}).", styles.body),
              Spacer(1, 3 * mm), row]
    rows = [(f"<b>{markup(detector_title(detector.name))}</b>", f"{detector.score:.0f}",
             markup(detector.band) if detector.available else "not available", "yes" if detector.flagged else "no",
             markup(detector.summary if detector.available else detector.reason))
            for detector in detectors]
    story += [paragraph("Detectors", styles.h2), table(("detector", "score", "band", "flagged", "summary"),
                                                  rows, styles, (0.16, 0.08, 0.14, 0.09, 0.53), numeric=(1,))]
    for detector in detectors:
        if detector.statistics:
            story += [paragraph(f"Statistics · {markup(detector_title(detector.name))}",
                         styles.h2),
                      table(reward_view.STATISTIC_COLUMNS,
                             [tuple(map(markup, row)) for row in reward_view.statistic_rows(detector)], styles,
                             (0.27, 0.23, 0.27, 0.23), numeric=reward_view.STATISTIC_NUMERIC)]
    evidence = [(markup(detector_title(detector.name)), markup(link),
                 markup(prompt), markup(answer))
                for detector in detectors
                for link, prompt, answer in reward_view.evidence(report.generations, detector.examples, EVIDENCE_CHARS)]
    if evidence:
        story += [paragraph("Evidence", styles.h2), table(("detector", "prompt", "prompt text",
                                                     f"{theme.TRAINED_LABEL} answer"), evidence, styles,
                                                    (0.14, 0.18, 0.3, 0.38))]
    return story


def _token(token: str) -> str:
    """A token as reportlab markup, quoted so a leading space shows."""
    return f"“{markup(token)}”"


def _internals(report: RunReport, styles: Styles) -> list:
    story = _section("internals", styles)
    if report.internals is None:
        return [*story, paragraph(markup(run_view.absence(report, "internals")), styles.muted)]
    view = internals_view(report.internals)
    columns = parts_of.layer_columns(view)
    story += [paragraph(markup(view.reading), styles.body), paragraph(f"{markup(view.method_line)}; {markup(view.cost_line)}",
                                                        styles.muted),
              KeepTogether([paragraph("Per layer, neutral corpus", styles.h2),
                            pdf_charts.layer_curves(view.layers, view.curves, WIDTH)]),
              table(columns, [tuple(map(markup, row)) for row in parts_of.layer_rows(view)], styles,
                     (0.1, *(0.9 / (len(columns) - 1),) * (len(columns) - 1)), numeric=tuple(range(len(columns))))]
    for adl in parts_of.averaged_tables(view):
        story += [paragraph(f"Activation-difference lens · {markup(adl.title)}", styles.h2),
                  paragraph(f"‖δ‖ = {adl.norm:.3g}. {markup(parts_of.RELEVANCE_NOTE)}", styles.small),
                  table(parts_of.TOKEN_COLUMNS, parts_of.token_rows(adl, _token), styles,
                         (0.06, 0.24, 0.08, 0.12, 0.24, 0.08, 0.12), numeric=parts_of.TOKEN_NUMERIC)]
        if adl.patchscope:
            persistent = ", ".join(map(_token, adl.persistent)) or "none"
            story.append(paragraph(f"{markup(parts_of.PATCHSCOPE_NOTE)}: {persistent}.", styles.body))
    return [*story, *_causal(report.internals, styles)]


#: Column widths (fractions of the page) of the causal half's tables, by their columns.
CAUSAL_WIDTHS = {TRIAL_COLUMNS: (0.34, 0.33, 0.33), STEERING_COLUMNS: (0.4, 0.2, 0.2, 0.2),
                 LOCALIZATION_COLUMNS: (0.1, 0.45, 0.45),
                 AMPLIFICATION_COLUMNS: (0.17, 0.04, 0.30, 0.09, 0.19, 0.07, 0.14)}


def _causal(result: InternalsResult, styles: Styles) -> list:
    """Steering, layer localization (with its bars) and amplification as ``causal_view`` words them, or why
    each is absent."""
    view = causal_view(result)
    story: list = []
    for part, title in PART_TITLES.items():
        story.append(paragraph(markup(title), styles.h2))
        if part in view.notes:
            story.append(paragraph(markup(view.notes[part]), styles.muted))
        elif part == "steering":
            story += [paragraph(markup(view.steering.reading), styles.body), paragraph(markup(view.steering.method_line), styles.small),
                      _causal_table(view.steering.trials, styles), Spacer(1, 2 * mm),
                      _causal_table(view.steering.metrics, styles)]
        elif part == "localization":
            story += [paragraph(markup(view.localization.reading), styles.body), paragraph(markup(LOCALIZATION_NOTE), styles.small),
                      pdf_charts.localization_bars(view.localization, WIDTH),
                      _causal_table(view.localization.table, styles)]
        else:
            story += [paragraph(markup(view.amplification.reading), styles.body),
                      paragraph(f"{markup(view.amplification.sample_line)} {markup(AMPLIFICATION_NOTE)}", styles.small),
                      _causal_table(view.amplification.table, styles)]
    return story


def _causal_table(causal: CausalTable, styles: Styles) -> Table:
    """Every cell as reportlab markup (a stored result's metric and detector names are not ours)."""
    return table(tuple(map(markup, causal.columns)), [tuple(map(markup, row)) for row in causal.rows], styles,
                 CAUSAL_WIDTHS[causal.columns], numeric=causal.numeric)


def _answer(text: str) -> str:
    if len(text) <= ANSWER_CHARS:
        return markup(text, mono=True)
    return markup(text[:ANSWER_CHARS], mono=True) + f"<br/><i>… cut at {ANSWER_CHARS} characters</i>"


def _examples(report: RunReport, styles: Styles) -> list:
    story = _section("examples", styles)
    chosen = run_view.examples(report)
    if not chosen:
        return [*story, paragraph(markup(run_view.absence(report, "generations")), styles.muted)]
    for example in chosen:
        tokens = ", ".join(f"{markup(repr(token.token))} (KL {token.kl:.2f})" for token in example.top_tokens[:5])
        side = WIDTH / 2 - CELL_PADDING
        sides = Table([[paragraph(f"<b>{theme.BASE_LABEL}</b> · {example.base.n_tokens} tokens · "
                           f"{example.base.stop_reason}", styles.small, side),
                        paragraph(f"<b>{theme.TRAINED_LABEL}</b> · {example.trained.n_tokens} tokens · "
                           f"{example.trained.stop_reason}", styles.small, side)],
                       [paragraph(_answer(example.base.text), styles.mono, side),
                        paragraph(_answer(example.trained.text), styles.mono, side)]],
                      colWidths=[WIDTH / 2] * 2)
        sides.setStyle(TableStyle([
            ("LINEABOVE", (0, 0), (0, 0), 3, HexColor(theme.BASE_COLOR)),
            ("LINEABOVE", (1, 0), (1, 0), 3, HexColor(theme.TRAINED_COLOR)),
            ("BACKGROUND", (0, 1), (-1, 1), HexColor("#fbfbfc")), ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]))
        block = [paragraph(f"<b>{markup(example.link)}</b> · {markup(example.prompt.category)} · {markup(example.why)}",
                    styles.h2),
                 paragraph(f"<b>Prompt:</b> {markup(example.prompt.text)}", styles.body)]
        if tokens:
            block.append(paragraph(f"Diverges most at {tokens}", styles.small))
        story += [KeepTogether([*block, Spacer(1, 2 * mm), sides]), Spacer(1, 5 * mm)]
    return story


def _provenance(report: RunReport, styles: Styles) -> list:
    story = _section("provenance", styles)
    for group, facts in run_view.provenance(report):
        story += [paragraph(markup(group), styles.h2), _facts(facts, styles)]
    return story


def build_a4(story: list, footer: str, title: str, author: str) -> bytes:
    """``story`` laid out on A4 pages with the report's margins, each page footed by ``footer`` (cut to one
    line) and its number: the one page frame the run report and the trajectory report share."""
    def decorate(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(fonts().family, 7)
        canvas.setFillColor(HexColor(theme.MUTED))
        canvas.drawString(MARGIN, 9 * mm, footer[:110])
        canvas.drawRightString(A4[0] - MARGIN, 9 * mm, f"page {document.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                                 bottomMargin=MARGIN + 4 * mm, title=title, author=author)
    document.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()


def render_pdf(report: RunReport) -> bytes:
    """The report as PDF bytes (A4)."""
    styles = Styles()
    story = [*_title_page(report, styles), *_section("findings", styles), _findings(run_view.findings(report), styles)]
    for part in (_weights, _behaviour, _reward_hack, _internals, _examples, _provenance):
        story += part(report, styles)
    return build_a4(story, drawable(f"Afterburn report · {run_view.title_line(report)} · run {report.run.run_id}",
                                    keep=""),
                    drawable(f"Afterburn report: {run_view.title_line(report)}", keep=""),
                    f"afterburn {report.afterburn_version}")
