"""The one constructor of ``TensorDiff``: a tensor's name, sides, change and spectrum into one record.

Contract: ``tensor_diff(pair_name, shape, status, dtype_base, dtype_trained,
*, change=None, spectrum=None, summary=None, …)`` builds every record the
weight diff writes — a full pair compared in a pass (``comparer``), a LoRA
target from its factors (``lora``), a tensor on one side only, a tied head.
Layer and module type come from the normalized name (``naming.classify``);
``stored_name`` / ``base_stored_name`` are the names the files store it
under (``TensorDiff`` says which is shown). ``change`` is
the pair's ``DeltaMetrics`` (None: nothing to compare, every metric None);
``spectrum`` and ``summary`` come together, for a changed matrix. The expert
a tensor belongs to (``expert``, ``shared_expert``) comes from the name too;
a stacked expert tensor carries ``expert_slices``, each built by
``expert_slice`` from the slice's metrics and spectrum.

It computes nothing: the metrics come from ``metrics.DeltaStats`` or from
``lora_delta.LoraDelta``, the spectra from ``spectrum``. Cost: nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterburn_core.checkpoints.naming import classify, expert_index, is_shared_expert
from afterburn_core.weights.spectrum import Spectrum, SpectrumSummary
from afterburn_core.weights.types import ExpertSlice, TensorDiff, TensorStatus


@dataclass(frozen=True)
class DeltaMetrics:
    """How one tensor pair changed, by whichever computation measured it.

    ``max_abs_delta`` and ``fraction_unchanged_within_resolution`` need the
    entries of ΔW; a computation that never forms them (LoRA factors) leaves them None.
    """

    frob_norm_base: float
    frob_norm_delta: float
    frob_norm_trained: float
    relative_change: float | None
    cosine_similarity: float | None
    fraction_unchanged: float
    max_abs_delta: float | None = None
    fraction_unchanged_within_resolution: float | None = None

    @classmethod
    def unchanged(cls, frob_norm_base: float) -> DeltaMetrics:
        """The metrics of a tensor both sides hold bit-identical, of norm ``frob_norm_base``."""
        return cls(
            frob_norm_base=frob_norm_base, frob_norm_delta=0.0, frob_norm_trained=frob_norm_base,
            relative_change=0.0, cosine_similarity=1.0 if frob_norm_base > 0 else None, fraction_unchanged=1.0,
            max_abs_delta=0.0, fraction_unchanged_within_resolution=1.0,
        )


def tensor_diff(
    name: str,
    shape: tuple[int, ...],
    status: TensorStatus,
    dtype_base: str | None,
    dtype_trained: str | None,
    *,
    change: DeltaMetrics | None = None,
    spectrum: Spectrum | None = None,
    summary: SpectrumSummary | None = None,
    trained_shape: tuple[int, ...] | None = None,
    added_rows: int = 0,
    tied_to: str | None = None,
    stored_name: str | None = None,
    base_stored_name: str | None = None,
    expert_slices: tuple[ExpertSlice, ...] = (),
) -> TensorDiff:
    """One record (see the module docstring); ``shape`` is the base's, ``trained_shape`` set only when resized."""
    layer, module = classify(name)
    return TensorDiff(
        name=name,
        shape=tuple(shape),
        status=status,
        module=module,
        layer=layer,
        dtype_base=dtype_base,
        dtype_trained=dtype_trained,
        frob_norm_base=change.frob_norm_base if change else None,
        frob_norm_delta=change.frob_norm_delta if change else None,
        relative_change=change.relative_change if change else None,
        cosine_similarity=change.cosine_similarity if change else None,
        fraction_unchanged=change.fraction_unchanged if change else None,
        singular_values=summary.singular_values if summary else None,
        spectrum_method=spectrum.method if spectrum else None,
        spectrum_error_bound=spectrum.error_bound if spectrum else None,
        effective_rank=summary.effective_rank if summary else None,
        stable_rank=summary.stable_rank if summary else None,
        rank_90=summary.rank_90 if summary else None,
        low_rank=summary.low_rank if summary else None,
        trained_shape=tuple(trained_shape) if trained_shape is not None else None,
        frob_norm_trained=change.frob_norm_trained if change else None,
        max_abs_delta=change.max_abs_delta if change else None,
        fraction_unchanged_within_resolution=change.fraction_unchanged_within_resolution if change else None,
        rank_99=summary.rank_99 if summary else None,
        energy_top_k=summary.energy_top_k if summary else None,
        added_rows=added_rows,
        tied_to=tied_to,
        stored_name=stored_name,
        base_stored_name=base_stored_name,
        expert=expert_index(name),
        shared_expert=is_shared_expert(name),
        expert_slices=expert_slices,
    )


def expert_slice(
    expert: int, shape: tuple[int, ...], change: DeltaMetrics, spectrum: Spectrum | None, summary: SpectrumSummary | None
) -> ExpertSlice:
    """One expert's slice of a stacked tensor: its metrics and, for a changed 2-D slice, its spectrum."""
    return ExpertSlice(
        expert=expert,
        shape=tuple(shape),
        frob_norm_base=change.frob_norm_base,
        frob_norm_delta=change.frob_norm_delta,
        relative_change=change.relative_change,
        singular_values=summary.singular_values if summary else None,
        spectrum_method=spectrum.method if spectrum else None,
        spectrum_error_bound=spectrum.error_bound if spectrum else None,
        effective_rank=summary.effective_rank if summary else None,
        stable_rank=summary.stable_rank if summary else None,
        rank_90=summary.rank_90 if summary else None,
        rank_99=summary.rank_99 if summary else None,
        energy_top_k=summary.energy_top_k if summary else None,
        low_rank=summary.low_rank if summary else None,
    )
