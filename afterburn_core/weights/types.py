"""The weight-diff result and the records it is made of (contract: docs/weight-diff-schema.md).

Frozen dataclasses only, no torch: the pages and reports load a stored
``WeightDiffResult`` without importing the engine. The engine, structure and
diagnosis modules build these; ``afterburn_core.views.weights`` turns them into
what every door shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from afterburn_core.checkpoints.naming import ModuleType
from afterburn_core.types import CheckpointRef

TensorStatus = Literal["changed", "unchanged", "base_only", "trained_only", "resized", "tied"]
SpectrumMethod = Literal["randomized", "exact_gram_fp64", "exact_svdvals", "lora_factors"]


@dataclass(frozen=True)
class TensorDiff:
    """One tensor of the pair compared. Field names up to ``low_rank`` are the JSON contract.

    Metrics are None where they do not apply (a tensor on one side only has no
    delta; a 1-D tensor has no spectrum). For ``resized`` tensors (a grown
    vocabulary) the metrics cover the shared rows and ``added_rows`` counts the
    rest. ``rank_90`` / ``rank_99`` are None when more than the computed
    singular values are needed ("> k"; ``energy_top_k`` then says how much the
    computed ones hold).

    Names: ``name`` is the normalized key the sides pair by (``model.`` and
    ``base_model.model.`` dropped; also what ``tied_to``, ``NormShift.name``
    and ``EmbeddingDrift.tensor`` say). ``stored_name`` is the tensor's name
    exactly as the trained checkpoint's file stores it, or the base's where
    the trained file has no tensor under this key (base only, a head only the
    trained side ties); for a LoRA adapter it is the base model's own tensor
    name — the module peft's ``target_modules`` matches, whose factors the
    adapter stores as ``….lora_A`` / ``….lora_B``. ``base_stored_name`` is the
    base file's name when it spells the tensor otherwise (a prefix saved on
    one side only). ``display_name`` is what every view shows.
    """

    name: str
    shape: tuple[int, ...]
    status: TensorStatus
    module: ModuleType
    layer: int | None
    dtype_base: str | None
    dtype_trained: str | None
    frob_norm_base: float | None
    frob_norm_delta: float | None
    relative_change: float | None
    cosine_similarity: float | None
    fraction_unchanged: float | None
    singular_values: tuple[float, ...] | None = None
    spectrum_method: SpectrumMethod | None = None
    spectrum_error_bound: float | None = None
    effective_rank: float | None = None
    stable_rank: float | None = None
    rank_90: int | None = None
    low_rank: bool | None = None
    # Extra fields (not part of the contract other tools read).
    trained_shape: tuple[int, ...] | None = None
    frob_norm_trained: float | None = None
    max_abs_delta: float | None = None
    fraction_unchanged_within_resolution: float | None = None
    rank_99: int | None = None
    energy_top_k: float | None = None
    added_rows: int = 0
    tied_to: str | None = None
    stored_name: str | None = None
    base_stored_name: str | None = None

    @property
    def display_name(self) -> str:
        """The name as stored; the key when none is (a head both sides tie, a result from before stored names)."""
        return self.stored_name or self.name


@dataclass(frozen=True)
class LayerModuleCell:
    """Aggregate change of one module type in one layer (a heatmap cell); layer None = outside the stack."""

    layer: int | None
    module: ModuleType
    tensors: int
    frob_norm_base: float
    frob_norm_delta: float
    relative_change: float
    effective_rank: float | None
    energy_top_k: float | None


@dataclass(frozen=True)
class HeadScores:
    """Per-head relative change, layers × heads, GQA-aware (k/v heads mapped to their query groups)."""

    num_layers: int
    num_heads: int
    num_kv_heads: int
    layers: tuple[int, ...]
    scores: tuple[tuple[float, ...], ...]
    per_projection: dict[str, tuple[tuple[float, ...], ...]]


@dataclass(frozen=True)
class NormShift:
    """How one normalization weight (gamma) or bias (beta) moved."""

    name: str
    layer: int | None
    kind: Literal["gamma", "beta"]
    mean_base: float
    mean_trained: float
    mean_ratio: float | None
    relative_change: float
    max_abs_delta: float
    #: The layer multiplies by 1 + weight (Gemma-style): every number above reads that effective scale.
    offset: bool = False


@dataclass(frozen=True)
class TokenDrift:
    """One embedding row's drift, with its token decoded through the tokenizer."""

    token_id: int
    token: str
    drift: float
    relative_drift: float


@dataclass(frozen=True)
class EmbeddingDrift:
    """Per-token drift of the input embedding (and of an untied head)."""

    tensor: str
    rows_compared: int
    rows_added: int
    rows_unchanged: int
    median_drift: float
    top_tokens: tuple[TokenDrift, ...]
    head_tensor: str | None = None
    head_top_tokens: tuple[TokenDrift, ...] = ()


@dataclass(frozen=True)
class Concentration:
    """How concentrated the change is across tensors."""

    top_decile_share: float
    gini: float
    tensors_with_change: int


@dataclass(frozen=True)
class Finding:
    """One plain-English finding, with the number behind it."""

    title: str
    detail: str
    value: float | None
    severity: Literal["info", "notable", "warning"] = "info"


@dataclass(frozen=True)
class Diagnosis:
    """The weight-diff profile and its findings, all computed from the result."""

    profile: Literal["identical", "surgical", "standard", "heavy", "extreme"]
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class WeightDiffResult:
    """The ``weights`` analysis (contract: docs/weight-diff-schema.md)."""

    KIND: ClassVar[str] = "weights"
    SCHEMA_VERSION: ClassVar[int] = 1

    base: CheckpointRef
    trained: CheckpointRef
    tensors: tuple[TensorDiff, ...]
    layers: tuple[LayerModuleCell, ...]
    heads: HeadScores | None
    norms: tuple[NormShift, ...]
    embeddings: EmbeddingDrift | None
    concentration: Concentration
    diagnosis: Diagnosis
    spectrum_top_k: int
    exact: bool
    device: str
    seconds: float
    is_adapter: bool = False
    schema_version: int = field(default=SCHEMA_VERSION)
    #: Why ``heads`` is None (the config gives no head count, no projection fits it); None when heads exist.
    heads_reason: str | None = None
