"""The weight-diff result and the records it is made of (contract: docs/weight-diff-schema.md).

Frozen dataclasses only, no torch: the pages and reports load a stored
``WeightDiffResult`` without importing the engine. The engine, structure and
diagnosis modules build these; ``afterburn_core.views.weights`` turns them into
what every door shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

from afterburn_core.checkpoints.naming import ModuleType
from afterburn_core.types import CheckpointRef

TensorStatus = Literal["changed", "unchanged", "base_only", "trained_only", "resized", "tied"]
SpectrumMethod = Literal["randomized", "exact_gram_fp64", "exact_svdvals", "lora_factors"]


@dataclass(frozen=True)
class ExpertSlice:
    """One expert's slice ``W[e]`` of a stacked expert tensor (``mlp.experts.gate_up_proj`` [E, …]).

    The metrics and spectrum fields mean what ``TensorDiff``'s do, for the slice alone: a stacked
    tensor has no spectrum of its own (its experts are separate matrices), each 2-D slice has one.
    """

    expert: int
    shape: tuple[int, ...]
    frob_norm_base: float
    frob_norm_delta: float
    relative_change: float | None
    singular_values: tuple[float, ...] | None = None
    spectrum_method: SpectrumMethod | None = None
    spectrum_error_bound: float | None = None
    effective_rank: float | None = None
    stable_rank: float | None = None
    rank_90: int | None = None
    rank_99: int | None = None
    energy_top_k: float | None = None
    low_rank: bool | None = None


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
    #: The routed expert a per-expert tensor belongs to (``experts.3.w1`` → 3); None elsewhere.
    expert: int | None = None
    #: The tensor belongs to a shared expert (``shared_expert`` / ``shared_experts``).
    shared_expert: bool = False
    #: A stacked expert tensor's per-expert slices, in expert order (empty for any other tensor).
    expert_slices: tuple[ExpertSlice, ...] = ()

    @property
    def display_name(self) -> str:
        """The name as stored; the key when none is (a head both sides tie, a result from before stored names)."""
        return self.stored_name or self.name

    def slices(self) -> tuple[TensorDiff, ...]:
        """Each expert slice of a stacked tensor as a record of its own (``name[e]``), for what ranks matrices."""
        return tuple(
            replace(self, name=f"{self.name}[{part.expert}]", shape=part.shape,
                    stored_name=f"{self.display_name}[{part.expert}]",
                    base_stored_name=f"{self.base_stored_name}[{part.expert}]" if self.base_stored_name else None,
                    frob_norm_base=part.frob_norm_base, frob_norm_delta=part.frob_norm_delta,
                    relative_change=part.relative_change, cosine_similarity=None, fraction_unchanged=None,
                    singular_values=part.singular_values, spectrum_method=part.spectrum_method,
                    spectrum_error_bound=part.spectrum_error_bound, effective_rank=part.effective_rank,
                    stable_rank=part.stable_rank, rank_90=part.rank_90, low_rank=part.low_rank,
                    frob_norm_trained=None, max_abs_delta=None, fraction_unchanged_within_resolution=None,
                    rank_99=part.rank_99, energy_top_k=part.energy_top_k, expert=part.expert, expert_slices=())
            for part in self.expert_slices)


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
class ExpertChange:
    """How one expert of one MoE layer changed, over every matrix it owns (per-expert tensors or stacked slices).

    ``expert`` is None for the layer's shared expert (``shared``). ``share`` is this routed expert's
    part of the ‖ΔW‖² of all the layer's routed experts (None for the shared expert). ``top_matrix``
    names its most-changed matrix as stored (a stacked slice as ``name[e]``), whose ``rank_90`` and
    ``low_rank`` verdict are given.
    """

    expert: int | None
    shared: bool
    tensors: int
    frob_norm_base: float
    frob_norm_delta: float
    relative_change: float
    share: float | None
    top_matrix: str | None = None
    rank_90: int | None = None
    low_rank: bool | None = None


@dataclass(frozen=True)
class MoeLayer:
    """The experts of one MoE layer, in expert order (the shared expert last), and how concentrated their change is.

    ``top_share`` = the most-changed routed expert's share of the layer's routed-expert ‖ΔW‖²;
    ``gini`` = the Gini coefficient of that ‖ΔW‖² over the routed experts (0 = even, → 1 = one
    expert); ``router_relative_change`` = ‖ΔW‖/‖W‖ of the layer's router tensors (None: none found).
    """

    layer: int
    experts: tuple[ExpertChange, ...]
    top_share: float
    gini: float
    router_relative_change: float | None = None


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
    #: Mixture-of-experts layers, in layer order (empty for a dense model).
    experts: tuple[MoeLayer, ...] = ()
