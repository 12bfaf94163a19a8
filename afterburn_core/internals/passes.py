"""Both models' residual streams on the same tokens, with one model in memory at a time.

Contract: ``compare_pair(base, trained, make_batches, readings, architecture, progress) -> PairRun``.
``base`` / ``trained`` are ``LoadedModel`` s or zero-argument loaders (``trained is base``: one LoRA
model whose adapter is toggled). ``make_batches(tokenizer)`` builds the ``Batch`` es once the first
model's tokenizer is at hand; for every batch ``readings.add(batch, base_states, trained_states,
base_lens, trained_lens)`` receives both models' block outputs [layers, rows, positions, hidden] and
each model's lens (its own final norm and unembedding). ``finish(loaded, parts)`` runs last with the
trained model still loaded (the activation-difference lens and patchscope read it).

Methods (as the token scorer's):

- ``"two_pass"``: pass 1 runs the base and appends its block outputs to an unnamed temporary file, in
  the model's own dtype so the trained pass compares against exactly what the base computed (two
  identical models differ by exactly 0); a copy of the base's lens head (final norm + unembedding:
  vocab × hidden parameters) is kept, the base is released, and pass 2 runs the trained model, reading
  the stored batch back into one buffer at a time. The scratch is on disk (``layers × padded tokens ×
  hidden × dtype size``; the demo's default run writes ~70 MB) and read with plain file I/O, not mapped
  into memory: a mapping keeps every page written resident in the process (measured by
  ``benchmarks/internals.py``: peak RSS 1.38× from 80 to 320 passages), plain I/O leaves them to the
  page cache, so the process's memory stays flat in corpus size.
- ``"adapter_toggle"``: each batch runs the one loaded base with the adapter on, then inside
  ``adapter_disabled()``; nothing is stored.

States are captured by forward hooks on the decoder blocks the architecture map names
(``model_parts``), while the model's base (blocks and final norm, no unembedding) runs: the logits of a
full forward are never computed. Plain hooks rather than nnsight / nnterp: both install beside the
pinned torch (nnsight 0.8.1, nnterp 1.3.0 and five more packages), but nnterp finds blocks and norms
through its own renaming table — a second list of module names beside the architecture map — and
nnsight traces every forward into a graph, for no capability a hook on the blocks lacks here.
Cost: one forward per batch per model; the scratch above.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from afterburn_core.errors import AnalysisSkipped
from afterburn_core.generation.loading import HeldModel
from afterburn_core.internals.model_parts import ModelParts, block_output, model_parts


@dataclass(frozen=True)
class InputSequence:
    """One input: the set it belongs to (``neutral`` or a suite), its id and its tokens."""

    input_set: str
    input_id: str
    token_ids: tuple[int, ...]


@dataclass
class Batch:
    """Right-padded rows (so position p is token p of every row) and their true lengths."""

    rows: list[InputSequence]
    input_ids: object  # torch.LongTensor [rows, width]
    lengths: list[int]


@dataclass(frozen=True)
class PairRun:
    method: str
    num_layers: int
    forward_passes: int
    scratch_bytes: int


def make_batch(rows: Sequence[InputSequence], pad_token_id: int) -> Batch:
    import torch

    width = max(len(row.token_ids) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, :len(row.token_ids)] = torch.tensor(row.token_ids, dtype=torch.long)
    return Batch(list(rows), input_ids, [len(row.token_ids) for row in rows])


def _causal_lm(model):
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def block_states(loaded, parts: ModelParts, batch: Batch):
    """Every block's output on ``batch``: a [layers, rows, positions, hidden] tensor in the model's dtype."""
    import torch

    captured: list = []
    hooks = [block.register_forward_hook(lambda _module, _inputs, output: captured.append(block_output(output)))
             for block in parts.blocks]
    lengths = torch.tensor(batch.lengths)
    attention_mask = (torch.arange(batch.input_ids.shape[1])[None, :] < lengths[:, None]).long()
    try:
        with torch.inference_mode():
            _causal_lm(loaded.model).base_model(
                input_ids=batch.input_ids.to(loaded.device),
                attention_mask=attention_mask.to(loaded.device),
                use_cache=False,
            )
    finally:
        for hook in hooks:
            hook.remove()
    if len(captured) != len(parts.blocks):
        raise AnalysisSkipped(f"{len(parts.blocks)} decoder blocks were hooked but {len(captured)} ran")
    return torch.stack(captured)


def _parts(loaded, architecture) -> ModelParts:
    parts = model_parts(loaded.model, architecture)
    for parameter in parts.head.unembedding.parameters():
        parameter.requires_grad_(False)
    return parts


def compare_pair(base, trained, make_batches: Callable, readings, architecture, progress: Callable, finish: Callable):
    """Feed ``readings`` both models' states batch by batch (see the module docstring)."""
    import torch

    with torch.inference_mode():
        if trained is base:
            return _toggle(base, make_batches, readings, architecture, progress, finish)
        return _two_pass(base, trained, make_batches, readings, architecture, progress, finish)


def _toggle(source, make_batches, readings, architecture, progress, finish) -> PairRun:
    with HeldModel(source) as loaded:
        parts = _parts(loaded, architecture)
        batches = make_batches(loaded.tokenizer)

        @contextlib.contextmanager
        def base_side():
            with loaded.adapter_disabled():
                yield

        def base_lens(states):
            with base_side():
                return parts.head.logits(states)

        for index, batch in enumerate(batches):
            progress(index, len(batches), f"adapter on and off, batch {index + 1} of {len(batches)}")
            trained_states = block_states(loaded, parts, batch)
            with base_side():
                base_states = block_states(loaded, parts, batch)
            readings.add(batch, base_states, trained_states, base_lens, parts.head.logits)
        finish(loaded, parts)
        return PairRun("adapter_toggle", len(parts.blocks), 2 * len(batches), 0)


def _two_pass(base, trained, make_batches, readings, architecture, progress, finish) -> PairRun:
    import torch

    with tempfile.TemporaryFile(prefix="afterburn-internals-") as scratch:
        with HeldModel(base) as loaded:
            parts = _parts(loaded, architecture)
            batches = make_batches(loaded.tokenizer)
            steps = 2 * len(batches)
            layers, shapes, dtype = len(parts.blocks), [], next(loaded.model.parameters()).dtype
            for index, batch in enumerate(batches):
                progress(index, steps, f"base model, batch {index + 1} of {len(batches)}")
                states = block_states(loaded, parts, batch).cpu()
                shapes.append(tuple(states.shape))
                scratch.write(states.reshape(-1).view(torch.uint8).numpy().tobytes())
            base_head = parts.head.copy()
            del parts
        written = scratch.tell()
        scratch.seek(0)
        with HeldModel(trained) as loaded:
            parts = _parts(loaded, architecture)
            for index, batch in enumerate(batches):
                progress(len(batches) + index, steps, f"trained model, batch {index + 1} of {len(batches)}")
                trained_states = block_states(loaded, parts, batch)
                stored = torch.empty(shapes[index], dtype=dtype)
                scratch.readinto(stored.view(-1).view(torch.uint8).numpy())
                readings.add(batch, stored.to(loaded.device), trained_states, base_head.logits, parts.head.logits)
            finish(loaded, parts)
        return PairRun("two_pass", layers, 2 * len(batches), written)
