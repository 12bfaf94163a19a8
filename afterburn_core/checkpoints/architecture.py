"""The architecture map: what each stored tensor is, read from config.json and the transformers model code.

Contract: ``architecture_map(description) -> ArchitectureMap`` for a checkpoint's
``ModelDescription`` (config.json, parsed once by ``description``). The map holds:

- **module roles** by tensor name (``naming.classify``: layer and module type;
  fused projections are ``qkv`` / ``gate_up``);
- **fused layouts**: which output features of a fused projection are q, k, v
  (or gate, up), as index arrays (``split``). The layouts are the ones the
  modeling code slices (transformers 5.x): GPT-2 / GPTBigCode ``c_attn``, Phi-3
  ``qkv_proj``, MPT / DBRX ``Wqkv`` are contiguous q|k|v (``split`` /
  ``qkv[..., :query_pos]``); ``query_key_value`` (GPT-NeoX, Bloom, Falcon) is
  grouped per key/value head — each group's queries, then its key and its
  value (``modeling_falcon``: ``view(…, num_kv_heads, -1, head_dim)``), which
  with one kv head per query head is GPT-NeoX's per-head [q_h, k_h, v_h] and
  with one kv head is Falcon's multi-query [q…, k, v]; ``gate_up_proj`` is
  gate|up halves (Phi-3 ``chunk(2, dim=-1)``);
- **Conv1D orientation**: tensors built as ``transformers.pytorch_utils.Conv1D``
  (GPT-2 family) are stored in × out, so their output features are columns;
- **norm convention**: a norm whose class multiplies by ``1 + weight`` (Gemma
  1/2/3, Qwen3-Next, …) stores an offset from 1; ``is_offset_norm`` says which;
- **decoder-block path** (``model.layers``, ``transformer.h``, OPT's ``model.decoder.layers``) and **head
  geometry** (from the description, which reads ``n_head``, ``num_kv_heads``,
  ``multi_query`` … under their various names);
- **stacked expert layouts**: a mixture-of-experts tensor holding every expert
  along its first axis (``mlp.experts.gate_up_proj`` [E, …], transformers 5's
  Mixtral / Qwen-MoE / DeepSeek / OLMoE / gpt-oss / Llama 4 ``*Experts``
  classes) is read one expert slice at a time; ``expert_split`` says which
  axis of a gate|up slice holds its output features and which of them are
  gate and up. Both come from the experts class's code: the axis built as
  ``2 * intermediate`` in ``nn.Parameter(torch.empty(E, …))`` is the output
  (Mixtral ``(E, 2 * I, H)``: out × in; gpt-oss / Llama 4 ``(E, H, 2 * I)``:
  in × out), and a class that slices ``gate_up[..., ::2]`` interleaves gate
  and up (gpt-oss), else they are halves (``chunk(2, dim=-1)``). Without the
  code a slice is read as out × in halves (the nn.Linear convention). Routers
  and expert indices are read from names (``naming``);
- the **reasons** a part could not be derived, in one sentence each.

Conv1D, offset norms and the block path are read from the model's code: the
modeling module transformers names for the ``model_type`` is imported (never
instantiated) and its source parsed: every ``self.<attr> = <Class>(…)`` in a
class says what builds ``<attr>``; a norm class is offset when its source
(or a transformers base class's) multiplies by ``1 + self.weight``. A tensor
path ``…<parent>.<attr>.weight`` is resolved through the classes that hold
``<attr>`` and are held as ``<parent>``, so Qwen3-Next's gated ``linear_attn.norm``
(multiplicative) is told from its offset ``input_layernorm``. An architecture
transformers does not know degrades: weights read as stored (out × in), norms
as multiplicative, and ``reasons`` says so. Never raises on a config.

Cost: the first map of a model_type imports its modeling module (~1.5 s with
transformers' own import) and parses it (~50 ms); cached per model_type.
Reads no weights.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np

from afterburn_core.checkpoints.naming import ModuleType, classify, layer_index
from afterburn_core.types import ModelDescription

FusedKind = Literal["contiguous_qkv", "grouped_qkv", "halves", "interleaved"]

#: A norm class's source multiplies by ``1 + weight``: the stored weight is an offset from 1.
#: transformers writes it ``(1.0 + self.weight.float())`` (Gemma, Qwen3-Next) or ``(1.0 + self.weight)``.
_OFFSET_SOURCE = re.compile(r"\(\s*1(?:\.0)?\s*\+\s*self\.weight\b|self\.weight(?:\.float\(\))?\s*\+\s*1(?:\.0)?\b")
#: An experts class interleaves gate and up features (gpt-oss ``gate_up[..., ::2], gate_up[..., 1::2]``).
_INTERLEAVED_SOURCE = re.compile(r"\[\s*\.\.\.\s*,\s*::\s*2\s*\]")
#: What transformers calls the layer that stores in × out (GPT-2 family).
_CONV1D = "Conv1D"


@dataclass(frozen=True)
class FusedLayout:
    """How one fused projection's output features split into roles, and where that layout is read from."""

    kind: FusedKind
    roles: tuple[ModuleType, ...]
    source: str


#: Fused projections by attribute name (see the module docstring for the modeling code each follows).
FUSED_LAYOUTS: dict[str, FusedLayout] = {
    "c_attn": FusedLayout("contiguous_qkv", ("q", "k", "v"), "GPT-2 / GPTBigCode c_attn(...).split(...)"),
    "qkv_proj": FusedLayout("contiguous_qkv", ("q", "k", "v"), "Phi-3 qkv[..., :query_pos]"),
    "Wqkv": FusedLayout("contiguous_qkv", ("q", "k", "v"), "MPT / DBRX Wqkv(...).split(...)"),
    "query_key_value": FusedLayout("grouped_qkv", ("q", "k", "v"),
                                   "GPT-NeoX / Bloom / Falcon view(..., num_kv_heads, -1, head_dim)"),
    "gate_up_proj": FusedLayout("halves", ("gate", "up"), "Phi-3 gate_up_proj(...).chunk(2, dim=-1)"),
}


@dataclass(frozen=True)
class StackedLayout:
    """One stacked expert tensor's slice: which of its two axes holds the output features, and how gate|up split."""

    output_axis: int
    kind: FusedKind
    source: str


#: A gate|up slice read without the model code: out × in (nn.Linear), gate and up halves.
DEFAULT_STACKED_LAYOUT = StackedLayout(0, "halves", "read as out × in halves (no model code)")


@dataclass(frozen=True)
class HeadGeometry:
    """Attention heads: query heads, key/value heads (GQA / multi-query) and the width of one head."""

    num_heads: int
    num_kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class ModelCode:
    """What the model's transformers code says, parsed once per model_type.

    ``builders[class][attr]`` = names of the classes whose call builds ``self.attr``;
    ``offset_classes`` = norm classes multiplying by ``1 + weight``; ``top_classes`` = the
    base model class and the classes holding it (what a name without a parent, such as
    the normalized ``norm.weight``, sits in).
    """

    module: str
    builders: dict[str, dict[str, frozenset[str]]]
    offset_classes: frozenset[str]
    decoder_path: str | None
    top_classes: frozenset[str] = frozenset()
    #: Stacked expert tensors by attribute (``gate_up_proj``): their slice layout (module docstring).
    stacked: dict[str, StackedLayout] = field(default_factory=dict)

    def constructors(self, parent: str | None, attr: str) -> frozenset[str]:
        """The classes that build ``<parent>.<attr>``: narrowed to holders stored as ``parent`` when any is."""
        holders = [cls for cls, attrs in self.builders.items() if attr in attrs]
        if parent is None:
            held = self.top_classes
        else:
            held = {built for attrs in self.builders.values() for built in attrs.get(parent, ())}
        holders = [cls for cls in holders if cls in held] or holders
        return frozenset(name for cls in holders for name in self.builders[cls][attr])


@dataclass(frozen=True)
class ArchitectureMap:
    """The map of one checkpoint's architecture (see the module docstring)."""

    model_type: str | None
    heads: HeadGeometry | None
    heads_reason: str | None
    decoder_path: str | None
    reasons: tuple[str, ...]
    code: ModelCode | None = field(default=None, compare=False, repr=False)

    def role(self, name: str) -> tuple[int | None, ModuleType]:
        """``(layer, module type)`` of a tensor name."""
        return classify(name)

    def layer(self, name: str) -> int | None:
        return layer_index(name)

    def _built_by(self, name: str) -> frozenset[str]:
        parts = name.split(".")
        if self.code is None or len(parts) < 2:
            return frozenset()
        return self.code.constructors(parts[-3] if len(parts) >= 3 else None, parts[-2])

    def is_conv1d(self, name: str) -> bool:
        """True when the tensor's layer is transformers' Conv1D: stored in × out, output features are columns."""
        return _CONV1D in self._built_by(name)

    def is_offset_norm(self, name: str) -> bool:
        """True when the norm multiplies by ``1 + weight``: its effective scale is 1 + the stored value."""
        if self.code is None or not name.endswith("weight"):
            return False
        built = self._built_by(name)
        return bool(built) and built <= self.code.offset_classes

    def fused_layout(self, name: str) -> FusedLayout | None:
        parts = name.split(".")
        return FUSED_LAYOUTS.get(parts[-2]) if len(parts) >= 2 else None

    def stacked_layout(self, name: str) -> StackedLayout:
        """How a slice of the stacked expert tensor ``name`` reads (the default where the code says nothing)."""
        parts = name.split(".")
        attr = parts[-2] if parts[-1] in ("weight", "bias") and len(parts) >= 2 else parts[-1]
        found = self.code.stacked.get(attr) if self.code is not None else None
        return found or DEFAULT_STACKED_LAYOUT

    def expert_split(self, name: str, slice_shape: tuple[int, ...]) -> tuple[int, dict[ModuleType, np.ndarray]] | None:
        """(output axis, gate / up feature indices) of one slice of a stacked gate|up tensor; None if it does not fit.

        A 1-D slice (gpt-oss's stacked bias) is its output features (axis 0).
        """
        if not slice_shape or len(slice_shape) > 2:
            return None
        layout = self.stacked_layout(name)
        axis = layout.output_axis if len(slice_shape) == 2 else 0
        features = slice_shape[axis]
        if features % 2:
            return None
        if layout.kind == "interleaved":
            return axis, {"gate": np.arange(0, features, 2), "up": np.arange(1, features, 2)}
        half = features // 2
        return axis, {"gate": np.arange(half), "up": np.arange(half, features)}

    def split(self, name: str, out_features: int) -> dict[ModuleType, np.ndarray] | None:
        """Output-feature indices of each role of a fused tensor (q indices in head order); None if it does not fit."""
        layout = self.fused_layout(name)
        if layout is None:
            return None
        if layout.kind == "halves":
            if out_features % 2:
                return None
            half = out_features // 2
            return {layout.roles[0]: np.arange(half), layout.roles[1]: np.arange(half, out_features)}
        geometry = self.heads
        if geometry is None:
            return None
        heads, kv, width = geometry.num_heads, geometry.num_kv_heads, geometry.head_dim
        if layout.kind == "contiguous_qkv":
            sizes = (heads * width, kv * width, kv * width)
            if sum(sizes) != out_features:
                return None
            bounds = np.cumsum((0,) + sizes)
            return {role: np.arange(bounds[i], bounds[i + 1]) for i, role in enumerate(layout.roles)}
        group = heads // kv
        block = (group + 2) * width
        if kv * block != out_features:
            return None
        starts = np.arange(kv) * block
        within = np.arange(width)
        query = (starts[:, None, None] + np.arange(group)[None, :, None] * width + within).reshape(-1)
        key = (starts[:, None] + group * width + within).reshape(-1)
        value = (starts[:, None] + (group + 1) * width + within).reshape(-1)
        return {"q": query, "k": key, "v": value}


def head_geometry(description: ModelDescription) -> tuple[HeadGeometry | None, str | None]:
    """The head geometry the description gives, or None and the sentence saying what is missing."""
    heads, kv, width = description.num_heads, description.num_kv_heads, description.head_dim
    if heads is None:
        return None, ("config.json gives no attention head count (num_attention_heads / n_head), "
                      "so heads cannot be sliced")
    if width is None or width <= 0:
        return None, f"config.json gives {heads} heads but no head_dim or hidden size to derive it from"
    if kv is None or kv <= 0 or heads % kv:
        return None, f"config.json gives {heads} query heads over {kv} key/value heads, which do not divide"
    return HeadGeometry(heads, kv, width), None


def _callee_names(node: ast.AST) -> set[str]:
    """Class names called anywhere in an assignment's value (``A(...)``, ``nn.A(...)``, ``A(...) if c else B(...)``)."""
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def _builders(tree: ast.Module) -> dict[str, dict[str, frozenset[str]]]:
    builders: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        for node in ast.walk(cls):
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                    builders[cls.name][target.attr] |= _callee_names(node.value)
    return {cls: {attr: frozenset(names) for attr, names in attrs.items()} for cls, attrs in builders.items()}


def _stacked_layouts(tree: ast.Module, source: str) -> dict[str, StackedLayout]:
    """Each ``self.<attr> = nn.Parameter(torch.empty(E, a[, b]))`` whose a or b is ``2 * …``: its gate|up layout."""
    layouts = {}
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        interleaved = bool(_INTERLEAVED_SOURCE.search(ast.get_source_segment(source, cls) or ""))
        for node in ast.walk(cls):
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            target = node.targets[0]
            if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"):
                continue
            shape = _parameter_shape(node.value)
            if shape is None or len(shape) not in (2, 3):  # [E, a, b] weights, [E, a] stacked biases
                continue
            doubled = [axis for axis, size in enumerate(shape[1:]) if _is_doubled(size)]
            if len(doubled) == 1:
                kind = "interleaved" if interleaved else "halves"
                layouts[target.attr] = StackedLayout(
                    doubled[0], kind, f"{cls.name}.{target.attr}: {ast.unparse(shape[doubled[0] + 1])} on slice axis "
                                      f"{doubled[0]}, gate|up {kind}")
    return layouts


def _parameter_shape(value: ast.AST) -> list[ast.AST] | None:
    """The size arguments of ``nn.Parameter(torch.empty(a, b, c))`` (or ``((a, b, c))``), else None."""
    func = value.func if isinstance(value, ast.Call) else None
    if func is None or getattr(func, "attr", getattr(func, "id", None)) != "Parameter" or not value.args:
        return None
    inner = value.args[0]
    if not isinstance(inner, ast.Call) or not inner.args:
        return None
    if len(inner.args) == 1 and isinstance(inner.args[0], ast.Tuple):
        return list(inner.args[0].elts)
    return list(inner.args)


def _is_doubled(size: ast.AST) -> bool:
    """``2 * x`` or ``x * 2``."""
    return (isinstance(size, ast.BinOp) and isinstance(size.op, ast.Mult)
            and any(isinstance(side, ast.Constant) and side.value == 2 for side in (size.left, size.right)))


def _is_offset_class(cls: object) -> bool:
    """A norm class (or a transformers base of it) whose source multiplies by ``1 + self.weight``."""
    if not inspect.isclass(cls):
        return False
    for base in cls.__mro__:
        if not base.__module__.startswith("transformers."):
            continue
        try:
            if _OFFSET_SOURCE.search(inspect.getsource(base)):
                return True
        except (OSError, TypeError):
            continue
    return False


def _base_model_name(model_type: str) -> str | None:
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    name = MODEL_MAPPING_NAMES.get(model_type)
    return name if isinstance(name, str) else None


def _top_classes(base_name: str | None, builders: dict) -> frozenset[str]:
    if base_name is None:
        return frozenset()
    holding = {cls for cls, attrs in builders.items() if any(base_name in names for names in attrs.values())}
    return frozenset({base_name, *holding})


def _module_lists(cls: str | None, builders: dict) -> list[str]:
    return [attr for attr, names in builders.get(cls, {}).items() if "ModuleList" in names]


def _block_stack(base_name: str | None, builders: dict) -> str | None:
    """The base model's one ModuleList attribute, or ``<child>.<list>`` when the base model holds none
    itself and exactly one child class holds one (OPT: ``OPTModel.decoder`` → ``OPTDecoder.layers``)."""
    stacks = _module_lists(base_name, builders)
    if stacks:
        return stacks[0] if len(stacks) == 1 else None
    nested = {f"{attr}.{_module_lists(built, builders)[0]}"
              for attr, names in builders.get(base_name, {}).items() for built in names
              if built != base_name and len(_module_lists(built, builders)) == 1}
    return nested.pop() if len(nested) == 1 else None


def _decoder_path(module: object, base_name: str | None, builders: dict) -> str | None:
    """``<base_model_prefix>.<block stack of the base model>`` (``model.layers``, ``transformer.h``,
    ``model.decoder.layers``)."""
    base_class = getattr(module, base_name, None) if base_name is not None else None
    prefix = getattr(base_class, "base_model_prefix", None)
    stack = _block_stack(base_name, builders)
    if not isinstance(prefix, str) or stack is None:
        return None
    return f"{prefix}.{stack}" if prefix else stack


@lru_cache(maxsize=64)
def model_code(model_type: str) -> ModelCode | str:
    """The parsed modeling code of ``model_type``, or the sentence saying why it cannot be read."""
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES, model_type_to_module_name
    except ImportError:
        return "transformers is not installed, so the model code cannot be read"
    if model_type not in CONFIG_MAPPING_NAMES:
        return f"model_type {model_type!r} is not an architecture this transformers knows"
    name = model_type_to_module_name(model_type)
    try:
        module = importlib.import_module(f"transformers.models.{name}.modeling_{name}")
        source = inspect.getsource(module)
        tree = ast.parse(source)
    except (ImportError, OSError, SyntaxError) as error:
        return f"the transformers code of {model_type!r} could not be read ({type(error).__name__})"
    builders = _builders(tree)
    norms = {built for attrs in builders.values() for names in attrs.values() for built in names if "Norm" in built}
    offsets = frozenset(norm for norm in norms if _is_offset_class(getattr(module, norm, None)))
    base_name = _base_model_name(model_type)
    return ModelCode(module.__name__, builders, offsets, _decoder_path(module, base_name, builders),
                     _top_classes(base_name, builders), _stacked_layouts(tree, source))


@lru_cache(maxsize=256)
def architecture_map(description: ModelDescription) -> ArchitectureMap:
    """The architecture map of a checkpoint described by ``description`` (never raises; see the module docstring)."""
    geometry, heads_reason = head_geometry(description)
    reasons = []
    code: ModelCode | None = None
    if description.model_type is None:
        reasons.append("config.json names no model_type, so the model code cannot be read")
    else:
        found = model_code(description.model_type)
        if isinstance(found, ModelCode):
            code = found
        else:
            reasons.append(found)
    if reasons:
        reasons.append("weights are read as stored (out × in) and norms as multiplicative")
    return ArchitectureMap(
        model_type=description.model_type,
        heads=geometry,
        heads_reason=heads_reason,
        decoder_path=code.decoder_path if code else None,
        reasons=tuple(reasons),
        code=code,
    )
