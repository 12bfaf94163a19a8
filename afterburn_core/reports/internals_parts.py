"""The internals section as every report format shows it: which ADL tables, and the cells of its tables.

The internals view (``views.internals``) orders and words the whole result
for the dashboard's page, which has room for every reading; a report shows
the same selection in HTML, Markdown and PDF, made once here: the averaged
reading of each layer the activation-difference lens read (the middle one by
default), the per-layer table of the curves, the input-set rows, and each
number as text. Token cells go through the writer's own ``shown`` function,
since a token is a model's vocabulary and each format escapes for its syntax;
this module escapes nothing and draws nothing.

The causal half (steering, layer localization, amplification) is not here:
the writers draw ``views.internals_causal``, as the page and the terminal do.
Cost: linear in the view.
"""

from __future__ import annotations

from collections.abc import Callable

from afterburn_core.views.internals import AdlTable, InputSetRow, InternalsView, TokenRow

TOKEN_COLUMNS = ("#", "promoted", "p", "relevance", "demoted", "p", "relevance")
TOKEN_NUMERIC = (0, 2, 3, 5, 6)
INPUT_SET_COLUMNS = ("input set", "sequences", "positions", "peak layer", "peak relative norm", "peak KL (nats)")
INPUT_SET_NUMERIC = (1, 2, 3, 4, 5)
RELEVANCE_NOTE = ("p: the token's probability in the readout of the mean difference δ (promoted) or of −δ "
                  "(demoted); relevance: how much more often the post-trained model writes the token than the "
                  "base in this run's generations, per 1 000 generated tokens.")
PATCHSCOPE_NOTE = "Patchscope, tokens the post-trained model reads from δ at half the scales or more"


def averaged_tables(view: InternalsView) -> tuple[AdlTable, ...]:
    """The averaged reading of each layer read (single positions are on the page and in the JSON)."""
    return tuple(table for table in view.adl if table.averaged)


def layer_columns(view: InternalsView) -> tuple[str, ...]:
    return ("layer", *(curve.name for curve in view.curves))


def layer_rows(view: InternalsView) -> list[tuple[str, ...]]:
    """One row per layer: its number and each curve's value there."""
    return [(str(layer), *(f"{curve.values[index]:.3g}" for curve in view.curves))
            for index, layer in enumerate(view.layers)]


def _relevance(value: float | None) -> str:
    if value is None:
        return "–"
    shown = f"{value:+.1f}"
    return "0.0" if shown in ("+0.0", "-0.0") else shown


def _half(row: TokenRow | None, shown: Callable[[str], object]) -> tuple[object, ...]:
    if row is None:
        return ("", "", "")
    return (shown(row.token), f"{row.score:.3f}", _relevance(row.relevance))


def token_rows(table: AdlTable, shown: Callable[[str], object]) -> list[tuple[object, ...]]:
    """Promoted and demoted tokens side by side by rank (``TOKEN_COLUMNS``); ``shown`` draws each token."""
    count = max(len(table.promoted), len(table.demoted))
    return [(str(rank + 1),
             *_half(table.promoted[rank] if rank < len(table.promoted) else None, shown),
             *_half(table.demoted[rank] if rank < len(table.demoted) else None, shown))
            for rank in range(count)]


def input_set_cells(row: InputSetRow) -> tuple[str, ...]:
    """``INPUT_SET_COLUMNS`` of one input set; its name is a suite's, untrusted."""
    return (row.input_set, str(row.sequences), str(row.positions), str(row.peak_layer),
            f"{row.peak_relative_norm:.3g}", f"{row.peak_logit_lens_kl:.3g}")

