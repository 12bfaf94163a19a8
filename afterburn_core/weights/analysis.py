"""The ``weights`` analysis: one streamed pass, then structure and diagnosis, as one typed result.

Cost: one read of each checkpoint's weights (``engine``), then work on small
per-tensor vectors only (``structure``, ``diagnosis``). This module only
assembles; it computes nothing of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from afterburn_core.config import AnalysisConfig
from afterburn_core.types import CheckpointRef, ResolvedCheckpoint
from afterburn_core.weights.types import WeightDiffResult


def checkpoint_ref(checkpoint: ResolvedCheckpoint) -> CheckpointRef:
    """The reference and fingerprint a result records for one side."""
    return CheckpointRef(checkpoint.reference, checkpoint.fingerprint, checkpoint.kind, checkpoint.revision)


def analyze_weights(
    base: ResolvedCheckpoint,
    trained: ResolvedCheckpoint,
    config: AnalysisConfig,
    progress: Callable[[int, int, str], None] | None = None,
) -> WeightDiffResult:
    """Compare the weights of ``base`` and ``trained`` (a full model or a LoRA adapter of the base)."""
    from afterburn_core.weights.diagnosis import diagnose
    from afterburn_core.weights.engine import compare_weights
    from afterburn_core.weights.structure import build_structure

    weight_pass = compare_weights(
        base, trained, top_k=config.spectrum_top_k, exact=config.exact_spectra, device=config.device,
        seed=config.seed, progress=progress,
    )
    structure = build_structure(weight_pass, base)
    return WeightDiffResult(
        base=checkpoint_ref(base),
        trained=checkpoint_ref(trained),
        tensors=weight_pass.tensors,
        layers=structure.layers,
        heads=structure.heads,
        norms=structure.norms,
        embeddings=structure.embeddings,
        concentration=structure.concentration,
        diagnosis=diagnose(weight_pass, structure),
        spectrum_top_k=config.spectrum_top_k,
        exact=config.exact_spectra,
        device=weight_pass.device,
        seconds=weight_pass.seconds,
        is_adapter=weight_pass.is_adapter,
        heads_reason=structure.heads_reason,
        experts=structure.experts,
    )
