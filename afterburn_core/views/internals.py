"""The internals result as every door shows it: layer curves, readable-trace tables, patchscope, lens grids.

``internals_view(result)`` turns a stored ``InternalsResult`` into a frozen
``InternalsView``: per-layer curves of the neutral corpus (relative norm,
cosine, logit-lens KL, and the first position apart), a row per input set,
the activation-difference-lens tables (promoted / demoted tokens with
their relevance, patchscope tokens by scale) in layer order with the
averaged reading first, the layer × position lens grids, and one reading
made of the numbers; ``cost_estimate_line`` words the cost the New run page
shows before launch (``internals.cost``). Tokens are drawn with ``token_label`` (a newline as ↵,
invisible characters spelled), still untrusted text: pages draw them as
text and reports escape them. Selects, orders and words; draws nothing.
Cost: linear in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.internals.cost import InternalsCostEstimate
from afterburn_core.internals.types import AdlReading, InternalsResult, PromptLens, TokenScore
from afterburn_core.views.prompts import token_label
from afterburn_core.views.wording import duration, plural, size


@dataclass(frozen=True)
class LayerCurve:
    """One per-layer measure over the neutral corpus, in layer order."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class InputSetRow:
    """One input set: how much was read and its largest per-layer difference."""

    input_set: str
    sequences: int
    positions: int
    peak_layer: int
    peak_relative_norm: float
    peak_logit_lens_kl: float


@dataclass(frozen=True)
class TokenRow:
    rank: int
    token: str
    score: float
    relevance: float | None


@dataclass(frozen=True)
class AdlTable:
    """One activation-difference-lens reading: its title, δ's norm, the token tables, patchscope by scale."""

    layer: int
    title: str
    averaged: bool
    norm: float
    promoted: tuple[TokenRow, ...]
    demoted: tuple[TokenRow, ...]
    patchscope: tuple[tuple[float, tuple[str, ...]], ...]
    persistent: tuple[str, ...]


@dataclass(frozen=True)
class LensGrid:
    """One input's layer × position lens: KL per cell and each model's top token there."""

    label: str
    tokens: tuple[str, ...]
    kl: tuple[tuple[float, ...], ...]
    base_top: tuple[tuple[str, ...], ...]
    trained_top: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class InternalsView:
    layers: tuple[int, ...]
    curves: tuple[LayerCurve, ...]
    input_sets: tuple[InputSetRow, ...]
    reading: str
    adl: tuple[AdlTable, ...]
    summary_tokens: tuple[str, ...]
    lenses: tuple[LensGrid, ...]
    method_line: str
    cost_line: str


def _rows(tokens: tuple[TokenScore, ...]) -> tuple[TokenRow, ...]:
    return tuple(TokenRow(rank, token_label(t.token), t.score, t.relevance) for rank, t in enumerate(tokens, 1))


def positions_title(positions: tuple[int, ...]) -> str:
    """``positions 0–4 averaged`` or ``position 2``."""
    if len(positions) == 1:
        return f"position {positions[0]}"
    return f"positions {positions[0]}–{positions[-1]} averaged"


def _table(reading: AdlReading) -> AdlTable:
    return AdlTable(
        reading.layer, f"Layer {reading.layer}, {positions_title(reading.positions)}", reading.averaged,
        reading.norm,
        _rows(reading.promoted), _rows(reading.demoted),
        tuple((scope.scale, tuple(token_label(t) for t in scope.tokens)) for scope in reading.patchscope),
        tuple(token_label(t) for t in reading.persistent),
    )


def _grid(lens: PromptLens) -> LensGrid:
    return LensGrid(lens.input_id, tuple(token_label(t) for t in lens.tokens), lens.kl,
                    tuple(tuple(token_label(t) for t in row) for row in lens.base_top),
                    tuple(tuple(token_label(t) for t in row) for row in lens.trained_top))


def _peak(values: tuple[float, ...]) -> int:
    return max(range(len(values)), key=lambda index: values[index]) if values else 0


def reading(result: InternalsResult) -> str:
    """One sentence made of the numbers: where the streams differ most, or that they do not differ."""
    layers = result.layers
    if not layers:
        return "No layer was read."
    if all(layer.relative_norm == 0 and layer.logit_lens_kl == 0 for layer in layers):
        return (f"The two models' residual streams are identical at all {plural(len(layers), 'layer')} "
                f"on {result.corpus.passages} neutral passages.")
    norms = tuple(layer.relative_norm for layer in layers)
    kls = tuple(layer.logit_lens_kl for layer in layers)
    top_norm, top_kl = _peak(norms), _peak(kls)
    return (f"On {result.corpus.passages} neutral passages the residual streams differ most at layer {top_norm} "
            f"(relative norm {norms[top_norm]:.3g}, cosine {layers[top_norm].cosine:.3g}); the logit-lens KL "
            f"peaks at layer {top_kl} ({kls[top_kl]:.3g} nats).")


def _summary_tokens(result: InternalsResult, count: int = 10) -> tuple[str, ...]:
    """The averaged reading's top promoted tokens at the first ADL layer read (the middle one by default)."""
    averaged = [entry for entry in result.adl if entry.averaged]
    if not averaged:
        return ()
    return tuple(token_label(t.token) for t in averaged[0].promoted[:count])


def internals_view(result: InternalsResult) -> InternalsView:
    """The registry's view of the ``internals`` kind."""
    layers = result.layers
    curves = (
        LayerCurve("relative norm", tuple(layer.relative_norm for layer in layers)),
        LayerCurve("cosine", tuple(layer.cosine for layer in layers)),
        LayerCurve("logit-lens KL (nats)", tuple(layer.logit_lens_kl for layer in layers)),
        LayerCurve("relative norm, first position", tuple(layer.sink_relative_norm for layer in layers)),
    )
    sets = []
    for entry in result.input_sets:
        norms = tuple(layer.relative_norm for layer in entry.layers)
        peak = _peak(norms)
        sets.append(InputSetRow(entry.input_set, entry.sequences, entry.positions, peak,
                                norms[peak] if norms else 0.0,
                                max((layer.logit_lens_kl for layer in entry.layers), default=0.0)))
    ordered = sorted(result.adl, key=lambda entry: (entry.layer, not entry.averaged, entry.positions))
    method = {"two_pass": "two passes, one model in memory at a time",
              "adapter_toggle": "one model, adapter toggled"}.get(result.method, result.method)
    cost = result.cost
    cost_line = (f"{cost.forward_passes} forward passes + {cost.patchscope_passes} patchscope passes, "
                 f"scratch {size(cost.scratch_bytes)}, {duration(cost.seconds)}")
    return InternalsView(
        tuple(layer.layer for layer in layers), curves, tuple(sets), reading(result),
        tuple(_table(entry) for entry in ordered), _summary_tokens(result),
        tuple(_grid(lens) for lens in result.lens_prompts),
        f"{result.num_layers} layers; {method}; corpus {result.corpus.name} v{result.corpus.version} "
        f"({result.corpus.passages} passages × ≤ {result.corpus.max_tokens} tokens)",
        cost_line,
    )


def cost_estimate_line(estimate: InternalsCostEstimate | None) -> str:
    """The internals analysis's cost as the New run page shows it before launch."""
    if estimate is None:
        return ("Internals: no cost estimate before launch: the post-trained model's config.json is not on this "
                "disk yet or does not state its layers, hidden size and vocabulary.")
    scratch = f"scratch ≈ {size(estimate.scratch_bytes)} on disk" if estimate.scratch_bytes else "no scratch"
    def passes(count: int, kind: str) -> str:
        return f"{count} {kind} pass{'' if count == 1 else 'es'}"

    return (f"Internals: {passes(estimate.forward_passes, 'forward')} + up to "
            f"{passes(estimate.patchscope_passes, 'patchscope')}; {scratch}; "
            f"peak memory ≈ {size(estimate.peak_bytes)}.")
