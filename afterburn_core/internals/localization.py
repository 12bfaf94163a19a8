"""Layer localization: which decoder blocks carry the change, found by swapping one block at a time.

Contract: ``localize_blocks(base, trained, generations, architecture, config, device, progress) ->
Localization``: the gap (below) and one ``LayerLocalization`` per decoder block in layer order (0-based, as
the architecture map's ``decoder_path`` lists them), or ``AnalysisSkipped`` with the sentence saying why not.
The gap is kept because the shares alone cannot tell "the models do not differ" (gap 0) from "no block
differs" (gap > 0, every share exactly 0: the change lies in the embeddings, final norm or head).

All models are teacher-forced on the run's stored trained answers (``generations.trained[k]``: prompt ids +
output ids), read at the output positions only, exactly as ``generation/scorer.py`` scores them (its
``output_logprobs`` and ``kl_per_row``: fp32 log-softmax, full vocabulary). With p_T the trained model, p_B the
base, p_{B+T_i} the base with block i's tensors taken from the trained checkpoint and p_{T+B_i} the trained
model with the base's block i, and KL̄(p ‖ q) the mean over every output position of every answer
(pooled, so a long answer weighs by its length):

- ``gap`` = KL̄(p_T ‖ p_B);
- ``kl_recovered_i`` = 1 − KL̄(p_T ‖ p_{B+T_i}) / gap: the share of the gap the trained block i closes
  alone in the base (1: that block is the whole change; 0: it does nothing alone; negative: it moves the
  base away from the trained model);
- ``reverse_kl_recovered_i`` = KL̄(p_T ‖ p_{T+B_i}) / gap: the share of the gap the base's block i opens
  alone in the trained model (1: removing that block's change undoes all of it; may exceed 1).
- gap = 0 (two identical models, or a pair whose answers the two score identically): every share is 0.0,
  no division is made.

How the swap is made, one model in memory at a time:

- Full checkpoints: the trained model runs first; its log-probs go to an unnamed temporary file in fp32
  (positions × vocab × 4 bytes: the default suites' 249 answers × ≤ 128 tokens × the demo's 1 k vocab ≤ 130 MB;
  with a 152 k vocab ≤ 19 GB on disk), read back one batch at a time with plain file I/O (``passes.py`` says why not a mapping). fp32
  and not fp16: the scorer's fp16 store moves each KL by up to 2⁻¹¹ × the cross-entropy, which for two
  identical models would be a nonzero gap made of rounding; fp32 gives exactly 0 there, and is the very
  value every later KL is measured against. Then, for each block i, the base's tensors of block i are
  streamed one at a time from the base checkpoint (``TensorIndex``: safetensors, pickle with
  ``weights_only``, or GGUF dequantized — the weights engine's readers) into the loaded trained model,
  the answers run, and the trained model's own values (kept on the CPU, one block) are copied back and
  checked bitwise. The trained model is released; the base runs the same way with the trained blocks.
  Names pair as the weights engine pairs them (``normalize_tensor_name``) at
  ``<decoder_path>.<i>.<name in the block>`` (or without the base-model prefix: GPT-2's ``h.0.…``). Before
  a loaded model's block is swapped, its own values are checked bitwise against its own checkpoint's
  tensors read the same way: a reader that disagrees with how transformers loaded the model (a GGUF
  layout, a tensor renamed or fused on load) skips the analysis with that tensor's name, never a wrong
  number. Both sides run in the dtype ``load_model`` picks per side (fp32 on CPU); a swapped tensor is
  cast to the receiving model's dtype.
- A LoRA adapter (``trained.kind == "adapter"``; ``base`` is then its base and is not loaded apart): one
  model, toggled. "Trained block i in the base" = inside ``adapter_disabled()``, the peft layers of block i
  (``BaseTunerLayer`` / ``AuxiliaryTrainingWrapper`` modules under it) switched back on with their own
  ``enable_adapters(True)`` — the call peft's ``disable_adapter`` makes on every layer — and off again
  after; "base block i in the trained model" = block i's peft layers switched off. Nothing is stored:
  each batch's trained log-probs are computed once and every variant is compared against them.

Cost: forward passes 2 + 2 × layers per batch of ``config.batch_size`` answers (default
``DEFAULT_SCORING_BATCH_SIZE``), each keeping logits for the output positions only; for full checkpoints
each checkpoint's block tensors are read twice (one check, one swap). Memory: one model + one block's
tensors (its own values kept on the CPU) + one batch's log-probs; the trained log-probs store on disk
(full checkpoints only).

It leaves to others: generating the answers (``generation``), loading models (``loading``), storing the
result and drawing the bar chart (``analysis``, views).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from afterburn_core.checkpoints.architecture import ArchitectureMap
from afterburn_core.checkpoints.tensors import normalize_tensor_name, open_tensor_index
from afterburn_core.config import AnalysisConfig
from afterburn_core.errors import AnalysisSkipped
from afterburn_core.generation.loading import HeldModel, load_model
from afterburn_core.generation.results import GenerationsResult
from afterburn_core.generation.scorer import DEFAULT_SCORING_BATCH_SIZE, kl_per_row, output_logprobs
from afterburn_core.internals.model_parts import model_parts
from afterburn_core.internals.types import LayerLocalization, Localization
from afterburn_core.types import ResolvedCheckpoint

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class _Answers:
    """One batch of answers to teacher-force: prompt ids and output ids per row (outputs non-empty)."""

    prompts: list
    outputs: list


@dataclass(frozen=True)
class _BlockKL:
    """Mean KLs from the trained model: to the base (``gap``), to the base with each trained block
    (``forward``), to the trained model with each base block (``reverse``)."""

    gap: float
    forward: tuple[float, ...]
    reverse: tuple[float, ...]


def localize_blocks(
    base: ResolvedCheckpoint,
    trained: ResolvedCheckpoint,
    generations: GenerationsResult,
    architecture: ArchitectureMap,
    config: AnalysisConfig,
    device,
    progress: Progress | None = None,
) -> Localization:
    """The KL(trained ‖ base) gap and, per decoder block, the share of it the block closes and opens (module
    docstring)."""
    answers = [(c.prompt_token_ids, c.output_token_ids) for c in generations.trained if c.output_token_ids]
    if not answers:
        raise AnalysisSkipped("layer localization teacher-forces the trained model's answers, and the run has none")
    size = config.batch_size or DEFAULT_SCORING_BATCH_SIZE
    batches = [_Answers([p for p, _ in answers[s:s + size]], [o for _, o in answers[s:s + size]])
               for s in range(0, len(answers), size)]
    report = progress or (lambda done, total, message: None)

    def load(checkpoint):
        return lambda: load_model(checkpoint, device, trust_remote_code=config.trust_remote_code,
                                  max_memory=config.max_memory)

    if trained.kind == "adapter":
        found = _toggle(load(trained), batches, architecture, report)
    else:
        found = _stitch(base, trained, load, batches, architecture, report)
    return Localization(found.gap, tuple(
        LayerLocalization(
            layer=layer,
            kl_recovered=1.0 - forward / found.gap if found.gap > 0 else 0.0,
            reverse_kl_recovered=reverse / found.gap if found.gap > 0 else 0.0,
        )
        for layer, (forward, reverse) in enumerate(zip(found.forward, found.reverse))
    ))


def _logprobs(loaded, batch: _Answers):
    """[output positions of the batch, vocab] fp32 log-probs, rows in answer order."""
    import torch

    return torch.cat(output_logprobs(loaded, batch.prompts, batch.outputs))


def _kl_sum(trained_logprobs, other_logprobs) -> float:
    if trained_logprobs.shape != other_logprobs.shape:
        raise AnalysisSkipped(
            f"layer localization compares next-token distributions of {trained_logprobs.shape[-1]} and "
            f"{other_logprobs.shape[-1]} tokens; it needs one vocabulary"
        )
    return float(kl_per_row(trained_logprobs, other_logprobs).double().sum())


def _positions(batches: Sequence[_Answers]) -> int:
    return sum(len(output) for batch in batches for output in batch.outputs)


# --- a LoRA adapter: one model, its layers toggled block by block ---------------------------------------------


def _peft_layers(block) -> list:
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    return [module for module in block.modules() if isinstance(module, (BaseTunerLayer, AuxiliaryTrainingWrapper))]


@contextlib.contextmanager
def _adapter_layers(layers: list, enabled: bool):
    """``layers`` switched to ``enabled`` inside the block, back after."""
    for layer in layers:
        layer.enable_adapters(enabled)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(not enabled)


def _toggle(source, batches: Sequence[_Answers], architecture: ArchitectureMap, report: Progress) -> _BlockKL:
    with HeldModel(source) as loaded:
        blocks = model_parts(loaded.model, architecture).blocks
        layers = [_peft_layers(block) for block in blocks]
        gap, forward, reverse = 0.0, [0.0] * len(blocks), [0.0] * len(blocks)
        for index, batch in enumerate(batches):
            report(index, len(batches), f"adapter toggled block by block, batch {index + 1} of {len(batches)}")
            trained_logprobs = _logprobs(loaded, batch)
            for block, block_layers in enumerate(layers):
                with _adapter_layers(block_layers, enabled=False):
                    reverse[block] += _kl_sum(trained_logprobs, _logprobs(loaded, batch))
            with loaded.adapter_disabled():
                gap += _kl_sum(trained_logprobs, _logprobs(loaded, batch))
                for block, block_layers in enumerate(layers):
                    with _adapter_layers(block_layers, enabled=True):
                        forward[block] += _kl_sum(trained_logprobs, _logprobs(loaded, batch))
        report(len(batches), len(batches), "adapter toggled block by block")
    positions = _positions(batches)
    return _BlockKL(gap / positions, tuple(v / positions for v in forward), tuple(v / positions for v in reverse))


# --- full checkpoints: block tensors streamed from the other side's files -------------------------------------


class _LogProbStore:
    """The trained model's log-probs per batch, fp32, in an unnamed temporary file (module docstring)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(prefix="afterburn-localization-")
        self.shapes: list[tuple[int, int]] = []
        self.offsets: list[int] = []

    def append(self, logprobs) -> None:
        self.offsets.append(self.file.seek(0, 2))
        self.shapes.append(tuple(logprobs.shape))
        self.file.write(logprobs.contiguous().numpy().tobytes())

    def read(self, index: int):
        import torch

        stored = torch.empty(self.shapes[index], dtype=torch.float32)
        self.file.seek(self.offsets[index])
        self.file.readinto(stored.view(-1).view(torch.uint8).numpy())
        return stored

    def close(self) -> None:
        self.file.close()


def _stored_name(index, path: str, layer: int, name: str) -> str:
    """The checkpoint's name for ``name`` of block ``layer`` (``<path>.<layer>.<name>``, normalized; or the
    same without the base-model prefix, as GPT-2's original files store ``h.0.…``)."""
    full = f"{path}.{layer}.{name}"
    for candidate in (full, full.partition(".")[2]):
        if candidate and normalize_tensor_name(candidate) in index:
            return normalize_tensor_name(candidate)
    raise AnalysisSkipped(
        f"layer localization swaps block {layer}'s tensors, and {index.checkpoint.reference} has no tensor "
        f"{normalize_tensor_name(full)}"
    )


def _block_tensors(block) -> dict:
    """Block parameters and persistent buffers by name within the block (the tensors themselves)."""
    return dict(block.state_dict(keep_vars=True))


def _read(index, path: str, layer: int, name: str, like):
    """``name`` of block ``layer`` from ``index``, as ``like``'s dtype on ``like``'s device."""
    stored = _stored_name(index, path, layer, name)
    tensor = index.load(stored)
    if tuple(tensor.shape) != tuple(like.shape):
        raise AnalysisSkipped(
            f"layer localization swaps {stored} of shape {tuple(tensor.shape)} from "
            f"{index.checkpoint.reference} into a tensor of shape {tuple(like.shape)}"
        )
    return tensor.to(device=like.device, dtype=like.dtype)


def _check_own(block, own_index, path: str, layer: int) -> None:
    """The loaded block holds exactly what its checkpoint's reader returns (else the swap would mix readers)."""
    import torch

    for name, tensor in _block_tensors(block).items():
        if tensor.is_meta:  # accelerate holds an offloaded block's weights elsewhere; none to swap in place
            raise AnalysisSkipped(
                f"layer localization swaps block {layer}'s weights in place, and --max-memory offloaded them to "
                "cpu or disk; run it with room for the whole model on the device"
            )
        if not torch.equal(_read(own_index, path, layer, name, tensor), tensor.detach()):
            raise AnalysisSkipped(
                f"layer localization reads {_stored_name(own_index, path, layer, name)} from "
                f"{own_index.checkpoint.reference} with other values than the loaded model holds, so a swapped "
                "block would not be that checkpoint's"
            )


@contextlib.contextmanager
def _swapped(block, other_index, path: str, layer: int):
    """Block ``layer`` holds ``other_index``'s tensors inside; its own values come back, checked bitwise, after."""
    import torch

    tensors = _block_tensors(block)
    own = {name: tensor.detach().to("cpu", copy=True) for name, tensor in tensors.items()}
    try:
        with torch.no_grad():
            for name, tensor in tensors.items():
                tensor.data.copy_(_read(other_index, path, layer, name, tensor))
        yield
    finally:
        with torch.no_grad():
            for name, tensor in tensors.items():
                tensor.data.copy_(own[name])
    if not all(torch.equal(tensor.detach().cpu(), own[name]) for name, tensor in tensors.items()):
        raise AnalysisSkipped(f"layer localization could not restore block {layer} after swapping it")


def _swapped_kls(loaded, blocks, own_index, other_index, path, batches, store, progress) -> tuple[float, ...]:
    """Per block, the summed KL from the stored trained log-probs to ``loaded`` with that block swapped;
    ``progress(layer)`` before each."""
    sums = []
    for layer, block in enumerate(blocks):
        progress(layer)
        _check_own(block, own_index, path, layer)
        with _swapped(block, other_index, path, layer):
            sums.append(sum(_kl_sum(store.read(i), _logprobs(loaded, batch)) for i, batch in enumerate(batches)))
    return tuple(sums)


def _stitch(base, trained, load, batches, architecture, report) -> _BlockKL:
    path = architecture.decoder_path
    store = _LogProbStore()
    try:
        with open_tensor_index(base) as base_index, open_tensor_index(trained) as trained_index:
            with HeldModel(load(trained)) as loaded:
                blocks = model_parts(loaded.model, architecture).blocks
                steps = 2 * (len(blocks) + 1)
                report(0, steps, "trained model")
                for batch in batches:
                    store.append(_logprobs(loaded, batch))
                reverse = _swapped_kls(
                    loaded, blocks, trained_index, base_index, path, batches, store,
                    lambda layer: report(1 + layer, steps, f"trained model with the base's block {layer}"),
                )
            with HeldModel(load(base)) as loaded:
                blocks = model_parts(loaded.model, architecture).blocks
                report(steps // 2, steps, "base model")
                gap = sum(_kl_sum(store.read(i), _logprobs(loaded, batch)) for i, batch in enumerate(batches))
                forward = _swapped_kls(
                    loaded, blocks, base_index, trained_index, path, batches, store,
                    lambda layer: report(steps // 2 + 1 + layer, steps, f"base model with the trained block {layer}"),
                )
            report(steps, steps, "layer localization done")
    finally:
        store.close()
    positions = _positions(batches)
    return _BlockKL(gap / positions, tuple(v / positions for v in forward), tuple(v / positions for v in reverse))
