"""The weight-diff verdict: a profile and plain-English findings, each with the number behind it.

Input: the ``WeightPass`` and its ``Structure``. Output: a ``Diagnosis``.
Every finding is emitted only when its condition holds, and its text carries
the numbers that made it hold; two identical checkpoints get the profile
``identical`` and a single finding saying so. This module reads no weights
and no files; it compares numbers already computed. Cost: O(tensors + rows of
the embedding).

Thresholds are the module constants below. Where a constant was calibrated,
its comment cites the two demo pairs (``afterburn_core/demo``): *edited* =
base vs ``trained`` (a fine-tune on another corpus plus three planted edits),
*control* = base vs ``control`` (a fine-tune as long on the base's own corpus,
nothing planted). Both were measured with exact SVDs in float64.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from afterburn_core.weights.peers import MIN_PEERS, peer_medians
from afterburn_core.weights.types import Diagnosis, Finding, TensorDiff
from afterburn_core.weights.spectrum import LOW_RANK_MAX_ABSOLUTE, LOW_RANK_MAX_FRACTION, LOW_RANK_MIN_DIM
from afterburn_core.weights.structure import (
    FUSED_MODULES,
    Structure,
    effective_norm_values,
    fused_roles,
    is_compared,
    moved_median,
    row_drifts,
)
from afterburn_core.weights.weight_pass import WeightPass

# --- profile bands --------------------------------------------------------------------------------

#: At most this share of the compared tensors changed -> "surgical". Convention: a ROME/MEMIT-style
#: edit or a one-layer patch touches a few matrices; a LoRA on even two projections of every layer
#: touches 2/9 ≈ 22 % of a Llama stack's tensors and is not surgical.
SURGICAL_MAX_CHANGED_FRACTION = 0.10
#: Median ‖ΔW‖/‖W‖ of the changed tensors at or above which the change is "heavy". Demo pairs:
#: control 0.086 (standard: the same corpus, 400 steps), edited 0.221 (another corpus + edits).
HEAVY_MIN_MEDIAN_RELATIVE_CHANGE = 0.15
#: ... and "extreme" from here: two independent draws of the same init differ by √2 ≈ 1.41, so a
#: median of 0.5 is over a third of the way to unrelated weights.
EXTREME_MIN_MEDIAN_RELATIVE_CHANGE = 0.5

# --- where the change sits ------------------------------------------------------------------------

#: A stacked tensor is an outlier when its ‖ΔW‖/‖W‖ is this many times the median of its peers (the
#: same name in every layer). Demo: the planted q_proj reads 4.19× and the ×1.25 norm 18.6×; the
#: highest unplanted ratio is 1.62 (edited, layers.0.input_layernorm) and 1.38 (control).
PEER_OUTLIER_RATIO = 2.5
#: "Change concentrates" when the top 10 % of tensors hold at least this share of the total ‖ΔW‖²
#: (a majority). Equal-sized tensors changed evenly hold 10 %. Demo: edited 0.69, control 0.79 —
#: both dominated by the embedding and lm_head, the largest tensors, which the text names.
CONCENTRATED_TOP_DECILE_SHARE = 0.5
#: One layer stands out when its ‖ΔW‖/‖W‖ (all its tensors) is this many times the median layer's.
#: Demo: edited layer 1 (the planted q_proj) reads 1.47×, every other layer ≤ 1.05×; control ≤ 1.04×.
LAYER_OUTLIER_RATIO = 1.3
#: Tensors named in one finding before the rest are counted instead.
MAX_NAMED = 5

# --- rank -----------------------------------------------------------------------------------------

# --- norms ----------------------------------------------------------------------------------------

#: A norm gamma is called rescaled when the median of trained/base over its entries is this far from 1.
#: Demo: the planted ×1.25 reads 1.259; the largest unplanted drift is the final norm, 1.032 (edited)
#: and 1.012 (control).
NORM_RESCALE_MIN_DEVIATION = 0.10
#: ... and "uniformly" when the median absolute deviation of those ratios is at most this share of
#: the median. Demo: the planted norm's is 0.5 %; a re-learned gamma would scatter far more.
NORM_UNIFORM_SPREAD = 0.02
#: Entries of a gamma with |base| below this are left out of the ratios (they would divide by ~0).
NORM_RATIO_MIN_ABS_BASE = 1e-6

# --- embeddings -----------------------------------------------------------------------------------

#: An embedding (or head) row is an outlier when its drift is this many times the median drift of the
#: rows that moved. Demo: the 8 planted rows read 14.5×, the next row 2.67× (edited); control's top
#: row 3.09×. An untied lm_head's top row: 1.35× (edited), 1.56× (control).
EMBED_OUTLIER_FACTOR = 6.0
#: Outlier tokens written out in a finding.
TOKENS_NAMED = 8

# --- mixture of experts ---------------------------------------------------------------------------

#: A router stands out ("notable") when its ‖ΔW‖/‖W‖ is this many times the median router's: the
#: peer-outlier ratio above (a router is one small matrix per layer, compared with its peers).
ROUTER_OUTLIER_RATIO = PEER_OUTLIER_RATIO
#: A layer's expert change "concentrates" when its most-changed routed expert holds at least this share
#: of the layer's routed-expert ‖ΔW‖² (a majority, as for the tensor concentration above). Experts
#: changed evenly hold 1/E each (≤ 1/8 in every released MoE: Mixtral 8, Qwen3-MoE 128, DeepSeek 256).
EXPERT_CONCENTRATED_SHARE = 0.5


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %" if value >= 0.001 else f"{100 * value:.3f} %"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def _changed(tensor: TensorDiff) -> bool:
    return is_compared(tensor) and (tensor.frob_norm_delta or 0.0) > 0


def profile_of(weight_pass: WeightPass) -> str:
    """identical / surgical / standard / heavy / extreme (see the band constants)."""
    compared = [t for t in weight_pass.tensors if is_compared(t)]
    changed = [t for t in compared if _changed(t)]
    one_sided = [t for t in weight_pass.tensors if t.status in ("base_only", "trained_only")]
    if not changed and not one_sided:
        return "identical"
    if compared and len(changed) <= SURGICAL_MAX_CHANGED_FRACTION * len(compared):
        return "surgical"
    median = _median([t.relative_change for t in changed if t.relative_change is not None])
    if median >= EXTREME_MIN_MEDIAN_RELATIVE_CHANGE:
        return "extreme"
    if median >= HEAVY_MIN_MEDIAN_RELATIVE_CHANGE:
        return "heavy"
    return "standard"


# --- findings -------------------------------------------------------------------------------------


def _summary(weight_pass: WeightPass, profile: str) -> list[Finding]:
    compared = [t for t in weight_pass.tensors if is_compared(t)]
    changed = [t for t in compared if _changed(t)]
    if profile == "identical":
        return [Finding("No tensor changed", f"All {len(compared)} shared tensors are bit-identical.", 0.0)]
    if not changed:
        return []
    median = _median([t.relative_change for t in changed if t.relative_change is not None])
    return [
        Finding(
            f"Profile: {profile}",
            f"{len(changed)} of {len(compared)} shared tensors changed; the median ‖ΔW‖/‖W‖ of those "
            f"that changed is {median:.4g}.",
            median,
            "warning" if profile == "extreme" else "info",
        )
    ]


def _roles(weight_pass: WeightPass, structure: Structure, tensor: TensorDiff) -> str:
    """`` — q holds 97.0 % of it, k 2.0 %, v 1.0 %`` for a fused tensor the map splits; "" otherwise."""
    if tensor.module not in FUSED_MODULES:
        return ""
    roles = fused_roles(tensor, weight_pass.details.get(tensor.name), structure.architecture)
    total = sum(float(delta.sum()) for delta, _ in roles.values()) if roles else 0.0
    if total <= 0:
        return ""
    shares = sorted(((float(delta.sum()) / total, role) for role, (delta, _) in roles.items()), reverse=True)
    listed = ", ".join(f"{role} {_pct(share)}" for share, role in shares[1:])
    return f" — {shares[0][1]} holds {_pct(shares[0][0])} of it, {listed}"


def _peer_outliers(weight_pass: WeightPass, structure: Structure) -> list[Finding]:
    outliers = []
    medians = peer_medians(weight_pass.tensors)
    for tensor in weight_pass.tensors:
        peers = medians.get(tensor.name)
        if peers is not None and peers.median > 0:
            ratio = tensor.relative_change / peers.median
            if ratio >= PEER_OUTLIER_RATIO:
                outliers.append((ratio, tensor, peers.median, peers.count, peers.key))
    outliers.sort(key=lambda item: -item[0])
    return [
        Finding(
            f"Outlier tensor: {tensor.display_name}",
            f"‖ΔW‖/‖W‖ = {tensor.relative_change:.4g}, {ratio:.1f}× the median {median:.4g} of the "
            f"{count} tensors {key} (threshold {PEER_OUTLIER_RATIO}×){_roles(weight_pass, structure, tensor)}.",
            ratio,
            "notable",
        )
        for ratio, tensor, median, count, key in outliers
    ]


def _concentration(weight_pass: WeightPass, structure: Structure) -> list[Finding]:
    share = structure.concentration.top_decile_share
    compared = [t for t in weight_pass.tensors if is_compared(t)]
    if share < CONCENTRATED_TOP_DECILE_SHARE or not any(_changed(t) for t in compared):
        return []
    count = max(1, math.ceil(0.1 * len(compared)))
    top = sorted(compared, key=lambda t: -(t.frob_norm_delta or 0.0))[:count]
    return [
        Finding(
            "Change concentrates in a few tensors",
            f"The top {count} of {len(compared)} tensors hold {_pct(share)} of the total ‖ΔW‖² "
            f"(Gini {structure.concentration.gini:.2f}): {_names([t.display_name for t in top])}.",
            share,
        )
    ]


def _layers(weight_pass: WeightPass) -> list[Finding]:
    base_sq: dict[int, float] = defaultdict(float)
    delta_sq: dict[int, float] = defaultdict(float)
    for tensor in weight_pass.tensors:
        if tensor.layer is not None and is_compared(tensor):
            base_sq[tensor.layer] += tensor.frob_norm_base**2
            delta_sq[tensor.layer] += tensor.frob_norm_delta**2
    relative = {layer: math.sqrt(delta_sq[layer] / base_sq[layer]) for layer in base_sq if base_sq[layer] > 0}
    if len(relative) < MIN_PEERS:
        return []
    median = _median(list(relative.values()))
    top_layer = max(relative, key=lambda layer: relative[layer])
    if median <= 0 or relative[top_layer] < LAYER_OUTLIER_RATIO * median:
        return []
    ratio = relative[top_layer] / median
    return [
        Finding(
            f"Layer {top_layer} changed most",
            f"Layer {top_layer}'s ‖ΔW‖/‖W‖ over all its tensors is {relative[top_layer]:.4g}, "
            f"{ratio:.2f}× the median layer's {median:.4g} (threshold {LAYER_OUTLIER_RATIO}×).",
            ratio,
            "notable",
        )
    ]


def _frozen_modules(weight_pass: WeightPass) -> list[Finding]:
    by_module: dict[str, list[TensorDiff]] = defaultdict(list)
    for tensor in weight_pass.tensors:
        if is_compared(tensor):
            by_module[tensor.module].append(tensor)
    if not any(_changed(t) for members in by_module.values() for t in members):
        return []
    frozen = {module: len(members) for module, members in sorted(by_module.items())
              if not any(_changed(t) for t in members)}
    if not frozen:
        return []
    listed = ", ".join(f"'{module}' ({count})" for module, count in frozen.items())
    return [
        Finding(
            f"{len(frozen)} module type{'s' * (len(frozen) != 1)} frozen",
            f"Every tensor of {listed} is bit-identical while the rest changed.",
            float(sum(frozen.values())),
        )
    ]


def top_energy_share(tensor: TensorDiff, rank: int) -> float | None:
    """Share of ‖ΔW‖² in the top ``rank`` singular values (None without a spectrum)."""
    if not tensor.singular_values or not tensor.frob_norm_delta:
        return None
    return float(sum(s * s for s in tensor.singular_values[:rank]) / tensor.frob_norm_delta**2)


def is_low_rank(tensor: TensorDiff) -> bool:
    """The engine's verdict (``spectrum.is_low_rank``), for a tensor that changed."""
    return bool(tensor.low_rank) and _changed(tensor)


def _matrices(weight_pass: WeightPass) -> list[TensorDiff]:
    """The tensors, with a stacked expert tensor replaced by its expert slices (each one matrix)."""
    return [matrix for tensor in weight_pass.tensors for matrix in (tensor.slices() or (tensor,))]


def _rank(weight_pass: WeightPass) -> list[Finding]:
    judged = [
        t for t in _matrices(weight_pass)
        if len(t.shape) == 2 and _changed(t) and min(t.shape) >= LOW_RANK_MIN_DIM
        and (t.rank_90 is not None or t.singular_values)
    ]
    if not judged:
        return []
    low = sorted((t for t in judged if is_low_rank(t)), key=lambda t: -(t.frob_norm_delta or 0.0))
    findings = []
    if low and len(low) == len(judged):
        findings.append(
            Finding(
                "Every 2-D change is low-rank",
                f"All {len(judged)} changed matrices put 90 % of ‖ΔW‖² in at most "
                f"{LOW_RANK_MAX_ABSOLUTE} directions or {_pct(LOW_RANK_MAX_FRACTION)} of their dimension "
                f"(largest rank_90: "
                f"{max(t.rank_90 for t in low)}), as a LoRA-style or merged low-rank update would.",
                1.0,
                "notable",
            )
        )
    else:
        for tensor in low[:MAX_NAMED]:
            share = top_energy_share(tensor, tensor.rank_90)
            share_text = f"; the top {tensor.rank_90} hold {_pct(share)}" if share is not None else ""
            findings.append(
                Finding(
                    f"Low-rank change: {tensor.display_name}",
                    f"90 % of ‖ΔW‖² sits in {tensor.rank_90} of {min(tensor.shape)} directions"
                    f"{share_text} (‖ΔW‖/‖W‖ = {tensor.relative_change:.4g}), while "
                    f"{len(judged) - len(low)} of the {len(judged)} changed matrices need more.",
                    float(tensor.rank_90),
                    "notable",
                )
            )
    full = len(judged) - len(low)
    if full and not low:
        findings.append(
            Finding(
                "Full-rank changes",
                f"None of the {len(judged)} changed matrices is low-rank: each needs more than "
                f"{LOW_RANK_MAX_ABSOLUTE} directions and {_pct(LOW_RANK_MAX_FRACTION)} of its dimension for 90 % "
                "of ‖ΔW‖², as full fine-tuning gives.",
                full / len(judged),
            )
        )
    return findings


def _gamma_ratio(weight_pass: WeightPass, structure: Structure, name: str) -> tuple[float, float] | None:
    """(median, median absolute deviation) of trained/base over a gamma's entries, at its effective scale."""
    values = effective_norm_values(weight_pass, structure.architecture, name)
    if values is None:
        return None
    base, trained = values
    keep = np.abs(base) >= NORM_RATIO_MIN_ABS_BASE
    if not keep.any():
        return None
    ratios = trained[keep] / base[keep]
    median = float(np.median(ratios))
    return median, float(np.median(np.abs(ratios - median)))


def _norms(weight_pass: WeightPass, structure: Structure) -> list[Finding]:
    norms = structure.norms
    if not norms:
        return []
    any_change = any(_changed(t) for t in weight_pass.tensors)
    moved = [n for n in norms if n.relative_change > 0]
    if not moved:
        if not any_change:
            return []
        detail = f"All {len(norms)} norm weights are bit-identical while other tensors changed."
        return [Finding("Norms frozen", detail, 0.0)]
    median_move = _median([n.relative_change for n in norms])
    shown = {tensor.name: tensor.display_name for tensor in weight_pass.tensors}  # norms are named by key
    findings = []
    for shift in norms:
        if shift.kind != "gamma":
            continue
        ratio = _gamma_ratio(weight_pass, structure, shift.name)
        if ratio is None or abs(ratio[0] - 1) < NORM_RESCALE_MIN_DEVIATION:
            continue
        median_ratio, spread = ratio
        how = (
            f"scaled ×{median_ratio:.3g} (entries agree within ±{_pct(spread / abs(median_ratio))})"
            if spread <= NORM_UNIFORM_SPREAD * abs(median_ratio)
            else f"moved: median entry ratio ×{median_ratio:.3g}, spread ±{_pct(spread / abs(median_ratio))}"
        )
        findings.append(
            Finding(
                f"Norm rescaled: {shown.get(shift.name, shift.name)}",
                f"{shown.get(shift.name, shift.name)} {how} while the median norm moved {_pct(median_move)} "
                f"({'‖Δγ‖/‖1 + γ‖, the layer scales by 1 + γ' if shift.offset else '‖Δγ‖/‖γ‖'} = "
                f"{shift.relative_change:.4g}).",
                median_ratio,
                "notable",
            )
        )
    if not findings:
        largest = max(norms, key=lambda n: n.relative_change)
        findings.append(
            Finding(
                "Norms moved little",
                f"{len(moved)} of {len(norms)} norm weights moved, by a median {_pct(median_move)} "
                f"(largest {shown.get(largest.name, largest.name)}, {_pct(largest.relative_change)}); none rescaled by "
                f"{_pct(NORM_RESCALE_MIN_DEVIATION)} or more.",
                median_move,
            )
        )
    return findings


def _row_outliers(weight_pass: WeightPass, name: str, tokens: tuple, part: str) -> list[Finding]:
    detail = weight_pass.details.get(name)
    if detail is None or detail.row_delta_sq is None:
        return []
    drifts = row_drifts(detail)
    median = moved_median(drifts)
    if median <= 0:
        return []
    outliers = int(np.count_nonzero(drifts >= EMBED_OUTLIER_FACTOR * median))
    if not outliers:
        return []
    named = [t for t in tokens if t.drift >= EMBED_OUTLIER_FACTOR * median][:TOKENS_NAMED]
    listed = ", ".join(f"{t.token_id} {t.token!r} ({t.drift / median:.1f}×)" for t in named)
    more = f" and {outliers - len(named)} more" if outliers > len(named) else ""
    return [
        Finding(
            f"{part} rows moved far beyond the rest",
            f"{outliers} rows of {name} drifted at least {EMBED_OUTLIER_FACTOR:g}× the median drift "
            f"{median:.4g} of the rows that moved: {listed}{more}.",
            float(named[0].drift / median) if named else float(outliers),
            "notable",
        )
    ]


def _embeddings(weight_pass: WeightPass, structure: Structure) -> list[Finding]:
    drift = structure.embeddings
    if drift is None:
        return []
    findings = _row_outliers(weight_pass, drift.tensor, drift.top_tokens, "Embedding")
    if drift.head_tensor is not None:
        findings += _row_outliers(weight_pass, drift.head_tensor, drift.head_top_tokens, "Output head")
    moved = drift.rows_compared - drift.rows_unchanged
    if moved and drift.rows_unchanged:
        findings.append(
            Finding(
                "Embedding rows untouched",
                f"{drift.rows_unchanged} of {drift.rows_compared} rows of {drift.tensor} are bit-identical "
                f"(no update reached them); {moved} moved, by a median {drift.median_drift:.4g}.",
                drift.rows_unchanged / drift.rows_compared,
            )
        )
    return findings


def _head(weight_pass: WeightPass) -> list[Finding]:
    heads = [t for t in weight_pass.tensors if t.module == "head"]
    changed_all = [t for t in weight_pass.tensors if _changed(t)]
    median = _median([t.relative_change for t in changed_all if t.relative_change is not None])
    findings = []
    for tensor in heads:
        if tensor.status == "tied":
            target = tensor.tied_to or "the input embedding"
            findings.append(
                Finding(
                    f"Output head tied: {tensor.display_name}",
                    f"{tensor.display_name} is tied to {target}; its change is the embedding's.",
                    None,
                )
            )
        elif _changed(tensor) and tensor.relative_change is not None:
            low = f" Its change is low-rank (rank_90 = {tensor.rank_90})." if is_low_rank(tensor) else ""
            times = f", {tensor.relative_change / median:.2f}× the median changed tensor" if median > 0 else ""
            tied = f" One side ties it: compared against {tensor.tied_to}." if tensor.tied_to else ""
            findings.append(
                Finding(
                    f"Output head changed: {tensor.display_name}",
                    f"‖ΔW‖/‖W‖ = {tensor.relative_change:.4g}{times}.{low}{tied}",
                    tensor.relative_change,
                )
            )
        elif is_compared(tensor) and changed_all:
            detail = f"{tensor.display_name} is bit-identical while other tensors changed."
            findings.append(Finding(f"Output head frozen: {tensor.display_name}", detail, 0.0))
    return findings


def _one_sided(weight_pass: WeightPass) -> list[Finding]:
    findings = []
    for status, side in (("base_only", "base"), ("trained_only", "trained")):
        names = [t.display_name for t in weight_pass.tensors if t.status == status]
        if names:
            findings.append(
                Finding(
                    f"Tensors only in the {side} checkpoint",
                    f"{len(names)} tensors exist only in the {side} checkpoint: {_names(names)}.",
                    float(len(names)),
                    "notable",
                )
            )
    for tensor in weight_pass.tensors:
        if tensor.status == "resized" and tensor.added_rows:
            how = f"grew by {tensor.added_rows}" if tensor.added_rows > 0 else f"lost {-tensor.added_rows}"
            findings.append(
                Finding(
                    f"Resized: {tensor.display_name}",
                    f"{tensor.display_name} {how} rows ({tensor.shape} -> {tensor.trained_shape}); "
                    "the metrics cover the shared rows.",
                    float(tensor.added_rows),
                    "notable",
                )
            )
    return findings


def _routers(weight_pass: WeightPass) -> list[Finding]:
    """Routing moved: the layers whose router tensors changed, most changed first."""
    base_sq: dict[int, float] = defaultdict(float)
    delta_sq: dict[int, float] = defaultdict(float)
    for tensor in weight_pass.tensors:
        if tensor.module == "router" and tensor.layer is not None and is_compared(tensor):
            base_sq[tensor.layer] += tensor.frob_norm_base**2
            delta_sq[tensor.layer] += tensor.frob_norm_delta**2
    relative = {layer: math.sqrt(delta_sq[layer]) / math.sqrt(base_sq[layer]) for layer in base_sq if base_sq[layer] > 0}
    moved = sorted((layer for layer in relative if relative[layer] > 0), key=lambda layer: -relative[layer])
    if not moved:
        return []
    top = moved[0]
    listed = _names([f"layer {layer} {relative[layer]:.4g}" for layer in moved])
    # Fewer than MIN_PEERS routers give no median worth comparing against: any move is notable.
    notable, versus = True, ""
    if len(relative) >= MIN_PEERS:
        median = _median(list(relative.values()))
        ratio = relative[top] / median if median > 0 else math.inf
        notable = ratio >= ROUTER_OUTLIER_RATIO
        versus = (f", {ratio:.1f}× the median router's {median:.4g} (threshold {ROUTER_OUTLIER_RATIO}×)"
                  if median > 0 else ", while the median router is unchanged")
    return [
        Finding(
            f"Routing moved: layer {top}'s router changed most",
            f"{len(moved)} of {len(relative)} routers changed; ‖ΔW‖/‖W‖ by layer: {listed}. Layer {top}'s reads "
            f"{relative[top]:.4g}{versus}: which experts its tokens reach has moved.",
            relative[top],
            "notable" if notable else "info",
        )
    ]


def _expert_name(change) -> str:
    return "the shared expert" if change.shared else f"expert {change.expert}"


def _experts(structure: Structure) -> list[Finding]:
    """Per MoE layer whose routed-expert change concentrates: the expert holding it, its rank; else the top experts."""
    findings = []
    ranked = []
    for moe in structure.experts:
        routed = [change for change in moe.experts if not change.shared]
        changed = [change for change in routed if change.frob_norm_delta > 0]
        ranked += [(change.relative_change, moe.layer, change) for change in moe.experts if change.frob_norm_delta > 0]
        if len(routed) < 2 or not changed or moe.top_share < EXPERT_CONCENTRATED_SHARE:
            continue
        top = max(routed, key=lambda change: change.frob_norm_delta)
        rank = (f"; its most-changed matrix {top.top_matrix} puts 90 % of ‖ΔW‖² in {top.rank_90} directions"
                f"{' (low-rank)' if top.low_rank else ''}" if top.rank_90 is not None else "")
        findings.append(
            Finding(
                f"Expert change concentrates: layer {moe.layer} expert {top.expert}",
                f"Expert {top.expert} holds {_pct(moe.top_share)} of the ‖ΔW‖² of layer {moe.layer}'s {len(routed)} "
                f"routed experts (Gini {moe.gini:.2f}; threshold {_pct(EXPERT_CONCENTRATED_SHARE)}), ‖ΔW‖/‖W‖ = "
                f"{top.relative_change:.4g}; {len(changed)} of {len(routed)} experts changed{rank}.",
                moe.top_share,
                "notable",
            )
        )
    if ranked and not findings:
        ranked.sort(key=lambda item: -item[0])
        listed = _names([f"layer {layer} {_expert_name(change)} {value:.4g}" for value, layer, change in ranked])
        findings.append(
            Finding(
                "Experts: most changed",
                f"{len(ranked)} experts changed; ‖ΔW‖/‖W‖, most changed first: {listed}. No layer's change sits "
                f"mostly in one expert (largest share {_pct(max(m.top_share for m in structure.experts))}).",
                ranked[0][0],
            )
        )
    return findings


def diagnose(weight_pass: WeightPass, structure: Structure) -> Diagnosis:
    """The profile and every finding whose condition holds, most specific first."""
    profile = profile_of(weight_pass)
    findings = _summary(weight_pass, profile)
    if profile != "identical":
        findings += _peer_outliers(weight_pass, structure)
        findings += _routers(weight_pass)
        findings += _experts(structure)
        findings += _rank(weight_pass)
        findings += _norms(weight_pass, structure)
        findings += _embeddings(weight_pass, structure)
        findings += _layers(weight_pass)
        findings += _concentration(weight_pass, structure)
        findings += _frozen_modules(weight_pass)
        findings += _head(weight_pass)
    else:
        findings += [f for f in _head(weight_pass) if f.title.startswith("Output head tied")]
    findings += _one_sided(weight_pass)
    return Diagnosis(profile=profile, findings=tuple(findings))
