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

CheckpointKind = Literal["local_dir", "safetensors_file", "pickle_file", "gguf_file", "hub", "adapter"]
WeightFormat = Literal["safetensors", "pickle", "gguf"]
RunStatus = Literal["queued", "running", "done", "failed", "cancelled"]
StageStatus = Literal["pending", "running", "done", "failed", "skipped"]


@dataclass(frozen=True)
class AdapterDescription:
    """A peft adapter's ``adapter_config.json``, as read once at resolution.

    ``rank`` / ``alpha`` are ``r`` / ``lora_alpha`` (None when the file does not
    say: the stored factors then decide). ``rank_pattern`` / ``alpha_pattern``
    keep peft's order, ``(pattern, value)`` pairs, first match wins.
    ``target_modules`` is a list of names or, as peft allows, one regex string.
    """

    peft_type: str
    base_model_name_or_path: str | None
    rank: int | None
    alpha: float | None
    use_rslora: bool
    rank_pattern: tuple[tuple[str, int], ...]
    alpha_pattern: tuple[tuple[str, float], ...]
    target_modules: tuple[str, ...] | str | None
    fan_in_fan_out: bool
    use_dora: bool


@dataclass(frozen=True)
class ModelDescription:
    """What a checkpoint's ``config.json`` says, parsed once by ``checkpoints.resolve``.

    Every field is None where the config does not say it (or there is no
    config.json): never a guess. ``num_kv_heads`` is ``num_heads`` when the
    config names no separate key/value head count (plain multi-head attention);
    ``head_dim`` is ``hidden_size // num_heads`` when not stated. ``torch_dtype``
    is the stored dtype's name without ``torch.`` (``bfloat16``). For an adapter
    the model fields are its base's and ``adapter`` holds its own config.
    """

    architecture: str | None = None
    model_type: str | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    num_heads: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    vocab_size: int | None = None
    tie_word_embeddings: bool | None = None
    torch_dtype: str | None = None
    adapter: AdapterDescription | None = None


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A model reference resolved to files on this disk.

    ``reference`` is what the user typed (``org/name@rev``, a path, ``demo:base``);
    everything else is what it resolved to. Paths are absolute strings so the
    record serializes as is. ``fingerprint`` is a hex digest over the files that
    define the model (weights, config, tokenizer): it changes when any of them
    changes, and it is what cache keys are made of. ``description`` is the
    parsed config every later stage reads instead of the JSON.
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
    description: ModelDescription = ModelDescription()


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
    """One tensor of a checkpoint as its header describes it (no data read).

    ``name`` is the normalized key two checkpoints pair by
    (``checkpoints.tensors.normalize_tensor_name``); ``stored_name`` is the
    name exactly as the file stores it (``model.layers.0.mlp.up_proj.weight``),
    the one a user finds in the file and in peft's ``target_modules``. None
    only in an inventory stored before it was recorded.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    stored_name: str | None = None

    @property
    def display_name(self) -> str:
        """The name as stored; the key in an inventory stored before stored names were recorded."""
        return self.stored_name or self.name


@dataclass(frozen=True)
class PlannedPair:
    """One tensor record of a pair: which tensor each side reads (None = the side has none).

    ``tied_to`` names the embedding a tied head reads on the side that stores
    no head of its own; ``both_tied`` marks a head that both sides tie to
    their embedding (nothing of its own to compare). ``name``, ``base_name``,
    ``trained_name`` and ``tied_to`` are normalized keys; ``stored_name`` is
    the record's name as a file stores it — the trained side's when it stores
    this key, else the base's, None when neither does (a head both sides tie)
    — and ``base_stored_name`` the base's own name for it when that differs
    (a ``model.`` prefix saved on one side only).
    """

    name: str
    base_name: str | None
    trained_name: str | None
    tied_to: str | None = None
    both_tied: bool = False
    stored_name: str | None = None
    base_stored_name: str | None = None


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
    side only or changes shape, so nothing is silently dropped later. A head
    tied to an embedding is listed in ``tied`` (the pairing the weight diff
    makes of it), not as one-sided.
    """

    KIND: ClassVar[str] = "inventory"
    # 2: ``tied`` added; a head tied to an embedding is no longer listed as one-sided, so stored v1
    # inventories are misses, never stale hits.
    SCHEMA_VERSION: ClassVar[int] = 2

    base: CheckpointSummary
    trained: CheckpointSummary
    shared_tensors: int
    base_only: tuple[TensorEntry, ...]
    trained_only: tuple[TensorEntry, ...]
    shape_changed: tuple[tuple[TensorEntry, TensorEntry], ...]
    dtype_changed: int
    tied: tuple[PlannedPair, ...] = ()
    schema_version: int = field(default=SCHEMA_VERSION)


@dataclass(frozen=True)
class CheckpointRef:
    """Which checkpoint a result was computed from."""

    reference: str
    fingerprint: str
    kind: str
    revision: str | None = None
