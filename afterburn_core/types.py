"""Typed, versioned records shared by the core, the CLI, the pages and the reports.

Everything here is a frozen dataclass that ``afterburn_core.serde`` turns into
JSON and back without loss. Results of analyses carry ``schema_version``; the
store keys cached results by it, so bumping a result's ``SCHEMA_VERSION``
makes old stored copies misses instead of stale hits.

This module holds data only: no I/O, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

CheckpointKind = Literal["local_dir", "safetensors_file", "pickle_file", "hub", "adapter"]
WeightFormat = Literal["safetensors", "pickle"]
RunStatus = Literal["queued", "running", "done", "failed", "cancelled"]
StageStatus = Literal["pending", "running", "done", "failed", "skipped"]


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A model reference resolved to files on this disk.

    ``reference`` is what the user typed (``org/name@rev``, a path, ``demo:base``);
    everything else is what it resolved to. Paths are absolute strings so the
    record serializes as is. ``fingerprint`` is a hex digest over the files that
    define the model (weights, config, tokenizer): it changes when any of them
    changes, and it is what cache keys are made of.
    """

    reference: str
    kind: CheckpointKind
    root: str
    weight_files: tuple[str, ...]
    weight_format: WeightFormat
    config_path: str | None
    fingerprint: str
    revision: str | None = None
    adapter_base: ResolvedCheckpoint | None = None

    @property
    def display_name(self) -> str:
        """The reference as the user wrote it, for titles and tables."""
        return self.reference


@dataclass(frozen=True)
class StageProgress:
    """Where one stage of a run stands; written by the worker, read by every door.

    ``seconds`` is the stage's wall time once it has ended (a cached stage
    takes the moment it needed to find its result), None before.
    """

    stage: str
    status: StageStatus
    done: int
    total: int
    message: str = ""
    seconds: float | None = None

    @property
    def fraction(self) -> float:
        """Share of the stage done, 0..1 (a finished stage is 1 even when ``total`` is 0)."""
        if self.status in ("done", "skipped"):
            return 1.0
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


@dataclass(frozen=True)
class RunRecord:
    """One run: a (base, trained, config) triple, its status and its progress."""

    run_id: str
    base_reference: str
    trained_reference: str
    base_fingerprint: str | None
    trained_fingerprint: str | None
    config_json: str
    status: RunStatus
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    worker_pid: int | None = None
    stages: tuple[StageProgress, ...] = ()

    @property
    def duration_s(self) -> float | None:
        """Wall seconds from launch (creation) to finish, as the user waited them; None while active."""
        if self.finished_at is None:
            return None
        return self.finished_at - self.created_at

    @property
    def is_active(self) -> bool:
        """True while a worker may still write to this run."""
        return self.status in ("queued", "running")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a checkpoint as its header describes it (no data read)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class CheckpointSummary:
    """What one checkpoint holds, read from headers and ``config.json`` only."""

    checkpoint: ResolvedCheckpoint
    architecture: str | None
    model_type: str | None
    num_layers: int | None
    hidden_size: int | None
    vocab_size: int | None
    num_tensors: int
    num_parameters: int
    parameters_by_dtype: dict[str, int]
    size_bytes: int


@dataclass(frozen=True)
class InventoryResult:
    """The ``inventory`` analysis: both checkpoints side by side, tensors paired by name.

    It is the first stage of every run: it proves both references load, tells
    the user what they are comparing, and lists every tensor that exists on one
    side only or changes shape, so nothing is silently dropped later.
    """

    KIND: ClassVar[str] = "inventory"
    SCHEMA_VERSION: ClassVar[int] = 1

    base: CheckpointSummary
    trained: CheckpointSummary
    shared_tensors: int
    base_only: tuple[TensorEntry, ...]
    trained_only: tuple[TensorEntry, ...]
    shape_changed: tuple[tuple[TensorEntry, TensorEntry], ...]
    dtype_changed: int
    schema_version: int = field(default=SCHEMA_VERSION)


# --- weights ------------------------------------------------------------------------------------

TensorStatus = Literal["changed", "unchanged", "base_only", "trained_only", "resized", "tied"]
SpectrumMethod = Literal["randomized", "exact_gram_fp64", "exact_svdvals", "lora_factors"]
ModuleType = Literal["q", "k", "v", "o", "gate", "up", "down", "norm", "embed", "head", "other"]


@dataclass(frozen=True)
class CheckpointRef:
    """Which checkpoint a result was computed from."""

    reference: str
    fingerprint: str
    kind: str
    revision: str | None = None


@dataclass(frozen=True)
class TensorDiff:
    """One tensor of the pair compared. Field names up to ``low_rank`` are the JSON contract.

    Metrics are None where they do not apply (a tensor on one side only has no
    delta; a 1-D tensor has no spectrum). For ``resized`` tensors (a grown
    vocabulary) the metrics cover the shared rows and ``added_rows`` counts the
    rest. ``rank_90`` / ``rank_99`` are None when more than the computed
    singular values are needed ("> k"; ``energy_top_k`` then says how much the
    computed ones hold).
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


# --- prompt suites and generations ---------------------------------------------------------------

SycophancyVariant = Literal["neutral", "wrong", "right"]
StopReason = Literal["eos", "length"]


@dataclass(frozen=True)
class Prompt:
    """One prompt of a suite. ``expected_answer`` is what a correct answer contains (None: open).

    Sycophancy probes come in triples sharing ``probe_id``: the ``neutral``
    question, the same question with the user asserting a ``wrong`` answer, and
    with the user asserting the ``right`` one (``asserted_answer`` holds what the
    user claimed). ``checks`` are code expectations (e.g. ``contains:def add``),
    evaluated as text checks, never executed.
    """

    suite: str
    prompt_id: str
    text: str
    category: str
    expected_answer: str | None = None
    tags: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    probe_id: str | None = None
    variant: SycophancyVariant | None = None
    asserted_answer: str | None = None


@dataclass(frozen=True)
class Suite:
    """A versioned prompt suite; ``content_hash`` (sha256 of its canonical JSON) enters cache keys."""

    name: str
    version: int
    description: str
    source: str
    content_hash: str
    prompts: tuple[Prompt, ...]


@dataclass(frozen=True)
class Completion:
    """One model's answer to one prompt, as generated.

    ``n_tokens`` counts generated tokens up to and including the first EOS
    (never padding, never what follows EOS); ``output_token_ids`` are exactly
    those tokens and ``token_logprobs`` their log-probabilities under the model
    that produced them (the sampling distribution before temperature/top-p).
    """

    text: str
    prompt_token_ids: tuple[int, ...]
    output_token_ids: tuple[int, ...]
    n_tokens: int
    stop_reason: StopReason
    token_logprobs: tuple[float, ...]
    seconds: float
