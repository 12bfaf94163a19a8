"""Turn a parsed ``config.json`` / ``adapter_config.json`` into the typed ``ModelDescription``.

Contract: ``describe_model(config)`` reads the model fields of a config.json
object (legacy key names such as GPT-2's ``n_layer`` / ``n_embd`` and a
multimodal model's ``text_config`` too) — a field the config lacks or gives
a value of the wrong type is None, never a guess. ``describe_adapter(config,
path)`` reads a peft adapter's fields and raises ``BadCheckpoint`` naming the
file, the key and the value when one has the wrong type, so a malformed
adapter fails at resolution and not half-way through the weight diff.

It leaves to others: reading and parsing the JSON files (``local.py``, which
names the file when they do not parse), deciding which config belongs to a
checkpoint (``resolution.py``). Torch-free; costs nothing beyond the dicts.
"""

from __future__ import annotations

from pathlib import Path

from afterburn_core.errors import BadCheckpoint
from afterburn_core.types import AdapterDescription, ModelDescription

#: Config keys for each field, first present wins (transformers' ``attribute_map``
#: aliases: GPT-2 / GPT-J use ``n_layer`` / ``n_embd`` / ``n_head``, T5-style configs
#: ``num_layers`` / ``d_model``).
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")
VOCAB_KEYS = ("vocab_size",)
HEAD_KEYS = ("num_attention_heads", "n_head")
#: Key/value head counts (GQA): Llama ``num_key_value_heads``, Falcon ``num_kv_heads`` (older
#: Falcon configs ``n_head_kv``).
KV_HEAD_KEYS = ("num_key_value_heads", "num_kv_heads", "n_head_kv")
#: The hidden size the head layout derives ``head_dim`` from (transformers' Llama and GPT-2 configs).
HEAD_HIDDEN_KEYS = ("hidden_size", "n_embd")
#: Keys naming the stored dtype; newer transformers write ``dtype``, older ``torch_dtype``.
DTYPE_KEYS = ("dtype", "torch_dtype")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _first_int(config: dict, keys: tuple[str, ...]) -> int | None:
    """The first integer under ``keys`` in the config, then in its ``text_config``."""
    for source in (config, config.get("text_config")):
        if not isinstance(source, dict):
            continue
        for key in keys:
            if _is_int(source.get(key)):
                return source[key]
    return None


def _head_fields(config: dict) -> tuple[int | None, int | None, int | None]:
    """``(num_heads, num_kv_heads, head_dim)``, each None where the config does not give it."""
    if "num_attention_heads" not in config and isinstance(config.get("text_config"), dict):
        config = config["text_config"]  # multimodal wrappers keep the LM's layout one level down
    num_heads = next((config[key] for key in HEAD_KEYS if key in config), None)
    if not _is_int(num_heads) or num_heads <= 0:
        return None, None, None
    num_kv_heads = _kv_heads(config, num_heads)
    hidden = next((config[key] for key in HEAD_HIDDEN_KEYS if key in config), None)
    head_dim = config.get("head_dim") or (hidden // num_heads if _is_int(hidden) else None)
    return num_heads, (num_kv_heads if _is_int(num_kv_heads) else None), (head_dim if _is_int(head_dim) else None)


def _kv_heads(config: dict, num_heads: int) -> object:
    """Key/value heads as the modeling code counts them (transformers' ``modeling_falcon``).

    Falcon's ``new_decoder_architecture`` reads ``num_kv_heads``; otherwise ``multi_query``
    (Falcon, GPTBigCode) means one key/value head and its absence one per query head, whatever
    ``num_kv_heads`` says (FalconConfig writes it equal to the head count either way).
    """
    if config.get("new_decoder_architecture") is True or "multi_query" not in config:
        return next((config[key] for key in KV_HEAD_KEYS if config.get(key)), num_heads)
    return 1 if config.get("multi_query") is True else num_heads


def _tie_word_embeddings(config: dict) -> bool | None:
    value = config.get("tie_word_embeddings")
    if value is None and isinstance(config.get("text_config"), dict):
        value = config["text_config"].get("tie_word_embeddings")
    return value if isinstance(value, bool) else None


def _dtype_name(config: dict) -> str | None:
    name = next((config[key] for key in DTYPE_KEYS if config.get(key)), None)
    return name.removeprefix("torch.") if isinstance(name, str) else None


def describe_model(config: dict) -> ModelDescription:
    """The model fields of one parsed config.json (see the module docstring)."""
    architectures = config.get("architectures")
    has_architecture = isinstance(architectures, list) and architectures and isinstance(architectures[0], str)
    num_heads, num_kv_heads, head_dim = _head_fields(config)
    return ModelDescription(
        architecture=architectures[0] if has_architecture else None,
        model_type=config.get("model_type") if isinstance(config.get("model_type"), str) else None,
        num_layers=_first_int(config, LAYER_KEYS),
        hidden_size=_first_int(config, HIDDEN_KEYS),
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        vocab_size=_first_int(config, VOCAB_KEYS),
        tie_word_embeddings=_tie_word_embeddings(config),
        torch_dtype=_dtype_name(config),
    )


class _AdapterFields:
    """Typed reads from one adapter_config.json; a wrong type is a ``BadCheckpoint`` naming key and file."""

    def __init__(self, config: dict, path: Path):
        self.config, self.path = config, path

    def _bad(self, key: str, expected: str) -> BadCheckpoint:
        return BadCheckpoint(
            f"{self.path}: {key} is {self.config[key]!r}, not {expected}; fix it or re-save the adapter with peft."
        )

    def text(self, key: str, default: str | None) -> str | None:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def flag(self, key: str) -> bool:
        value = self.config.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def _number(self, value: object, kind: type) -> bool:
        """True for a JSON number of ``kind``: a positive integer for ranks, any number ≥ 0 for alphas."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return value > 0 and value == int(value) if kind is int else value >= 0

    def number(self, key: str, kind: type) -> int | float | None:
        value = self.config.get(key)
        if value is None:
            return None
        if not self._number(value, kind):
            raise self._bad(key, "a positive integer" if kind is int else "a number ≥ 0")
        return kind(value)

    def pattern(self, key: str, kind: type) -> tuple:
        value = self.config.get(key)
        if value is None:
            return ()
        if not isinstance(value, dict) or not all(self._number(item, kind) for item in value.values()):
            raise self._bad(key, f"an object of module patterns to {'positive integers' if kind is int else 'numbers'}")
        return tuple((str(pattern), kind(item)) for pattern, item in value.items())

    def targets(self, key: str) -> tuple[str, ...] | str | None:
        value = self.config.get(key)
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._bad(key, "a list of module names or a regex string")
        return tuple(value)


def describe_adapter(config: dict, path: Path) -> AdapterDescription:
    """The adapter fields of one parsed adapter_config.json at ``path`` (see the module docstring)."""
    fields = _AdapterFields(config, path)
    base = fields.text("base_model_name_or_path", None)
    return AdapterDescription(
        peft_type=fields.text("peft_type", "LORA"),
        base_model_name_or_path=base.strip() or None if base is not None else None,
        rank=fields.number("r", int),
        alpha=fields.number("lora_alpha", float),
        use_rslora=fields.flag("use_rslora"),
        rank_pattern=fields.pattern("rank_pattern", int),
        alpha_pattern=fields.pattern("alpha_pattern", float),
        target_modules=fields.targets("target_modules"),
        fan_in_fan_out=fields.flag("fan_in_fan_out"),
        use_dora=fields.flag("use_dora"),
    )
