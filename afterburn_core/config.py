"""One configuration object for a run: defaults, ``.afterburn.yaml``, validation.

``AnalysisConfig`` is what a run is keyed by (together with the two checkpoint
fingerprints). Each field carries its help text in ``metadata["help"]``, which
the CLI reuses; ``__post_init__`` rejects a bad value with a sentence naming the
field, the value (cut short: ``limits.quoted``) and what is allowed.
``.afterburn.yaml`` is read by the bounded safe loader of
``afterburn_core.yaml_input`` (plain types only; nesting, alias expansion,
integer size and file size bounded); a key written twice is an error naming both
lines, and an unknown key is an error that lists the known ones.

Which fields each analysis reads is declared in the analyses registry
(``afterburn_core.analyses``); this module knows no analysis module. It reads
the registry only for the detector names ``reward_hack_weights`` may hold.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from afterburn_core.analyses import detector_names
from afterburn_core.device import parse_max_memory
from afterburn_core.errors import ConfigError
from afterburn_core.limits import MAX_CONFIG_FILE_BYTES, load_json, quoted
from afterburn_core.yaml_input import describe_yaml_error, load_marked, plain

TRAINING_METHODS = ("unknown", "sft", "dpo", "rlhf", "rlvr", "grpo", "lora")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Generation engines (the generation package's backends): auto picks vLLM when it is installed and a GPU
#: is present, else transformers.
BACKENDS = ("auto", "transformers", "vllm")

#: Largest value accepted for ``max_new_tokens``: beyond this a suite run on a
#: CPU takes hours, and the behaviour statistics do not need longer answers.
MAX_NEW_TOKENS_LIMIT = 4096
#: Upper bound for ``spectrum_top_k``: the randomized range finder stops being
#: cheaper than an exact spectrum well before this on typical widths (≤ 8192).
SPECTRUM_TOP_K_LIMIT = 1024
#: Upper bounds of the internals sample: the bundled corpus holds a few hundred passages (more are read as
#: all of it), and a passage past 512 tokens is no longer "the first tokens of unrelated text".
INTERNALS_PASSAGES_LIMIT = 100_000
INTERNALS_TOKENS_LIMIT = 512
#: The activation-difference lens reads the first positions; the paper's k is 5, and past 64 it is a mean
#: over whole passages.
ADL_POSITIONS_LIMIT = 64
#: Logit-difference amplification: α past 10 turns every answer into the difference's argmax token stream,
#: and more than 8 values or 64 samples per prompt multiplies a suite run past any useful length.
AMPLIFICATION_ALPHA_LIMIT = 10.0
AMPLIFICATION_ALPHAS_COUNT_LIMIT = 8
AMPLIFICATION_SAMPLES_LIMIT = 64
#: Upper bound of ``threads``: more than any CPU machine has; past it a value is a typo.
THREADS_LIMIT = 1024
#: Upper bound of vLLM's tensor and pipeline parallel sizes: a 70B model needs 4–8 GPUs, the largest open
#: models 16–64 over several nodes; past 512 a value is a typo.
PARALLEL_SIZE_LIMIT = 512


def _help(text: str, **extra: Any) -> dict[str, Any]:
    """A field's metadata: its help text, and what the CLI option generated from it needs beyond the field.

    ``flag``: the option's name where it is not ``--`` + the field name with hyphens (kept from before the
    options were generated, so scripts that use it keep working); ``choices``: the values a string field
    accepts, for the option's type.
    """
    return {"help": text, **extra}


@dataclass(frozen=True)
class AnalysisConfig:
    """Settings of one run. Defaults are what a careful user would pick."""

    method: str = field(
        default="unknown",
        metadata=_help(f"How the trained model was post-trained: one of {', '.join(TRAINING_METHODS)}.",
                       choices=TRAINING_METHODS),
    )
    device: str = field(
        default="auto",
        metadata=_help("Where to compute: auto (CUDA, then MPS, then CPU), cpu, cuda or mps.", choices=DEVICES),
    )
    suites: tuple[str, ...] = field(
        default=(),
        metadata=_help("Prompt suites: built-in names or paths to YAML/JSONL files (empty = the default set)."),
    )
    max_new_tokens: int = field(default=128, metadata=_help("Most tokens generated per answer."))
    batch_size: int = field(default=0, metadata=_help("Prompts per generation batch; 0 picks one by memory."))
    temperature: float = field(default=0.0, metadata=_help("Sampling temperature; 0 means greedy decoding."))
    top_p: float = field(default=1.0, metadata=_help("Nucleus sampling mass, used when temperature > 0."))
    seed: int = field(default=0, metadata=_help("Random seed for sampling and randomized spectra."))
    spectrum_top_k: int = field(
        default=32, metadata=_help("Singular values computed per weight delta.", flag="--top-k")
    )
    exact_spectra: bool = field(
        default=False,
        metadata=_help("Compute full spectra exactly instead of the randomized top-k.", flag="--exact"),
    )
    trust_remote_code: bool = field(
        default=False, metadata=_help("Allow model repos to run their own Python code. Off unless you trust them.")
    )
    internals_passages: int = field(
        default=0,
        metadata=_help("Neutral-corpus passages the internals analysis reads (0 = all but the steering check's "
                       "held-out ones)."),
    )
    internals_tokens: int = field(
        default=64, metadata=_help("Tokens read per neutral passage by the internals analysis.")
    )
    adl_positions: int = field(
        default=5,
        metadata=_help("First positions of each neutral passage the activation-difference lens averages (k)."),
    )
    adl_all_layers: bool = field(
        default=False,
        metadata=_help("Read the activation-difference lens at every layer, not only the middle one."),
    )
    steering: bool = field(
        default=True,
        metadata=_help("Steer the base with the activation difference and read its answers (internals)."),
    )
    localization: bool = field(
        default=True,
        metadata=_help("Swap each decoder block between the models to find which blocks carry the change (internals)."),
    )
    amplification: bool = field(
        default=True,
        metadata=_help("Sample answers from logits_t + α (logits_t − logits_b) and run the detectors on them (internals)."),
    )
    amplification_alphas: tuple[float, ...] = field(
        default=(0.0, 1.0, 2.0),
        metadata=_help("The α values of logit-difference amplification (0 = the trained model sampled as it is)."),
    )
    amplification_samples: int = field(
        default=1, metadata=_help("Answers sampled per prompt and α by logit-difference amplification.")
    )
    threads: int = field(
        default=0,
        metadata=_help("CPU threads torch computes with; 0 picks them from the CPUs this process may use "
                       "and the models' size (afterburn_core.threads)."),
    )
    backend: str = field(
        default="auto",
        metadata=_help("Generation engine: auto (vLLM when installed and a GPU is present, else transformers), "
                       "transformers, or vllm. Token KL and internals always run on transformers.",
                       choices=BACKENDS),
    )
    tensor_parallel_size: int = field(
        default=1, metadata=_help("vLLM backend: GPUs each layer is split over (tensor parallelism)."),
    )
    pipeline_parallel_size: int = field(
        default=1, metadata=_help("vLLM backend: stages the layers are split into (pipeline parallelism)."),
    )
    max_memory: str = field(
        default="",
        metadata=_help("transformers backend: memory each device may hold, e.g. 'cuda:0=20GiB,cpu=60GiB'; a "
                       "model past it is spread over the devices and offloaded (empty: what is free)."),
    )
    # Left out of the hash: a dict is unhashable, and equal configs still compare equal by it.
    reward_hack_weights: dict[str, float] = field(
        default_factory=dict,
        hash=False,
        metadata=_help(
            "Weights of the reward-hack detectors in the composite risk, by detector name "
            f"({', '.join(detector_names())}); the ones named replace the declared method's defaults."
        ),
    )

    def __post_init__(self) -> None:
        if self.method not in TRAINING_METHODS:
            raise ConfigError(f"method: {quoted(self.method)} is not one of {', '.join(TRAINING_METHODS)}")
        if self.device not in DEVICES:
            raise ConfigError(f"device: {quoted(self.device)} is not one of {', '.join(DEVICES)}")
        if not isinstance(self.suites, tuple) or not all(isinstance(s, str) and s for s in self.suites):
            raise ConfigError(f"suites: {quoted(self.suites)} must be a list of suite names or file paths")
        _check_int("max_new_tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS_LIMIT)
        _check_int("batch_size", self.batch_size, 0, 4096)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("spectrum_top_k", self.spectrum_top_k, 1, SPECTRUM_TOP_K_LIMIT)
        _check_int("internals_passages", self.internals_passages, 0, INTERNALS_PASSAGES_LIMIT)
        _check_int("internals_tokens", self.internals_tokens, 2, INTERNALS_TOKENS_LIMIT)
        _check_int("adl_positions", self.adl_positions, 1, ADL_POSITIONS_LIMIT)
        _check_int("amplification_samples", self.amplification_samples, 1, AMPLIFICATION_SAMPLES_LIMIT)
        _check_int("threads", self.threads, 0, THREADS_LIMIT)
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: {quoted(self.backend)} is not one of {', '.join(BACKENDS)}")
        _check_int("tensor_parallel_size", self.tensor_parallel_size, 1, PARALLEL_SIZE_LIMIT)
        _check_int("pipeline_parallel_size", self.pipeline_parallel_size, 1, PARALLEL_SIZE_LIMIT)
        if not isinstance(self.max_memory, str):
            raise ConfigError(f"max_memory: {quoted(self.max_memory)} must be text like 'cuda:0=20GiB,cpu=60GiB'")
        parse_max_memory(self.max_memory)
        _check_alphas(self.amplification_alphas)
        _check_number("temperature", self.temperature, 0.0, 10.0)
        _check_number("top_p", self.top_p, 1e-6, 1.0)
        for name in ("exact_spectra", "trust_remote_code", "adl_all_layers", "steering", "localization",
                     "amplification"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}: {quoted(getattr(self, name))} must be true or false")
        check_reward_hack_weights(self.reward_hack_weights)

    def subset(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The fields an analysis depends on, as JSON values, for its cache key."""
        unknown = [n for n in names if n not in FIELD_NAMES]
        if unknown:
            raise KeyError(f"unknown config fields {unknown}")
        return {n: _jsonable(getattr(self, n)) for n in sorted(names)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), stored with the run."""
        return json.dumps({f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AnalysisConfig:
        """Rebuild a config stored by ``to_json`` (a store is a file anyone may have edited: bounded parse)."""
        source = "stored run config"
        try:
            values = load_json(text)
        except ValueError as error:  # JsonTooDeep, bad JSON, an int past Python's 4 300 digits
            raise ConfigError(f"{source}: not valid JSON ({str(error)[:120]}); delete the run and start it again") from None
        return cls.from_mapping(values, source=source)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], *, source: str = "config") -> AnalysisConfig:
        """Build from a mapping (YAML, JSON, CLI flags); unknown keys are an error naming them."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
        for key in values:  # in written order; a key may be any YAML scalar (1, null, true)
            if not isinstance(key, str) or key not in FIELD_NAMES:
                raise ConfigError(f"{source}: unknown key {quoted(key)}; known keys are {', '.join(FIELD_NAMES)}")
        cleaned = dict(values)
        if "suites" in cleaned:
            suites = cleaned["suites"]
            if isinstance(suites, str):
                suites = [suites]
            if not isinstance(suites, (list, tuple)):
                raise ConfigError(f"{source}: suites must be a list, got {quoted(suites)}")
            cleaned["suites"] = tuple(suites)
        for name in ("temperature", "top_p"):
            if name in cleaned:
                cleaned[name] = _as_float(cleaned[name])
        if "amplification_alphas" in cleaned:
            alphas = cleaned["amplification_alphas"]
            alphas = [alphas] if isinstance(alphas, (int, float, str)) else alphas
            if not isinstance(alphas, (list, tuple)):
                raise ConfigError(f"{source}: amplification_alphas must be a list of numbers, got {quoted(alphas)}")
            cleaned["amplification_alphas"] = tuple(_as_float(_number(alpha)) for alpha in alphas)
        weights = cleaned.get("reward_hack_weights")
        if isinstance(weights, dict):
            cleaned["reward_hack_weights"] = {name: _as_float(value) for name, value in weights.items()}
        try:
            return cls(**cleaned)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    def replace(self, **changes: Any) -> AnalysisConfig:
        """A copy with some fields changed (validated again)."""
        return self.from_mapping({**json.loads(self.to_json()), **changes}, source="config")


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AnalysisConfig))


def load_config_file(path: str | Path) -> AnalysisConfig:
    """Read ``.afterburn.yaml`` (bounded, safe types only) into a validated config."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a FIFO / device that would block or never end
        raise ConfigError(f"{path}: is not a regular file; name a settings file such as .afterburn.yaml")
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.__class__.__name__})") from None
    if len(data) > MAX_CONFIG_FILE_BYTES:
        raise ConfigError(f"{path}: is over {MAX_CONFIG_FILE_BYTES // 1024} KiB, not a settings file; "
                          "a settings file holds a few 'key: value' lines")
    try:
        values = load_marked(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text; save the settings file as UTF-8") from None
    except yaml.YAMLError as error:
        line, problem = describe_yaml_error(error)
        raise ConfigError(f"{path}{'' if line is None else f' line {line}'}: {problem}") from None
    return AnalysisConfig.from_mapping({} if values is None else plain(values), source=str(path))


def _as_float(value: Any) -> Any:
    """An int as a float: YAML reads "1" as an int, and floats give equal settings one canonical JSON (cache key).

    Anything else, and an int too large for a float, is returned as it is, for the range check to refuse.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def _number(value: Any) -> Any:
    """A number typed as text on the command line ("1.5") as a float; anything else as it is."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_alphas(alphas: Any) -> None:
    if (not isinstance(alphas, tuple) or not 1 <= len(alphas) <= AMPLIFICATION_ALPHAS_COUNT_LIMIT
            or any(isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                   or not 0 <= alpha <= AMPLIFICATION_ALPHA_LIMIT for alpha in alphas)):
        raise ConfigError(f"amplification_alphas: {quoted(alphas)} must be 1 to {AMPLIFICATION_ALPHAS_COUNT_LIMIT} "
                          f"numbers from 0 to {AMPLIFICATION_ALPHA_LIMIT:g}")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: {quoted(value)} must be a whole number from {low} to {high}")


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{name}: {quoted(value)} must be a number from {low} to {high}")


def check_reward_hack_weights(weights: Any) -> dict[str, float]:
    """``weights`` if it is a valid ``reward_hack_weights`` mapping, else a ``ConfigError`` naming the problem."""
    if not isinstance(weights, dict):
        raise ConfigError(
            f"reward_hack_weights: {quoted(weights)} must be a mapping of detector name to weight, "
            f"e.g. {{length_bias: 0.4, sycophancy: 0.1}}"
        )
    known = detector_names()
    for name, value in weights.items():
        if name not in known:
            raise ConfigError(
                f"reward_hack_weights: unknown detector {quoted(name)}; known detectors are {', '.join(known)}"
            )
        # Compared, not math.isfinite(): that raises OverflowError on an int past a float's range.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= sys.float_info.max:
            raise ConfigError(f"reward_hack_weights: {name} = {quoted(value)} must be a finite number >= 0")
    # The weights named replace the method's (all positive), so only naming all four at 0 leaves none.
    if set(weights) == set(known) and not any(weights.values()):
        raise ConfigError(
            "reward_hack_weights: every detector's weight is 0; give at least one a positive weight, "
            "or leave reward_hack_weights out to use the method's defaults"
        )
    return weights


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return dict(value) if isinstance(value, dict) else value
