"""The activation-difference lens and patchscope: what the mean difference on neutral text says, in tokens.

The method is Minder et al. 2025 ("Narrow finetuning leaves clearly readable traces in activation
differences"; the Diffing Toolkit's ``activation_difference_lens``): δ, the mean of h_trained − h_base at
each of the first k positions of unrelated text, is read two ways with the trained model —

- **logit lens**: δ through the trained model's final norm and unembedding (``LensHead.logits``); the
  most probable tokens of the readout of +δ are *promoted*, of −δ *demoted*;
- **patchscope** (Ghandeharioun et al. 2024, token identity): δ rescaled to ``scale`` × the layer's mean
  residual norm replaces the last position's state at that layer in the identity prompt
  ``IDENTITY_PROMPT``, whose pattern makes the model repeat the token the state stands for; the tokens
  in the top list at no fewer than half the scales *persist*.

Contract: ``read_adl(means, mean_norms, layers, head, tokenizer, loaded, parts, token) ->
(tuple[AdlReading, ...], passes)``. Cost: one head projection per (layer, position) read; one forward
of the short identity prompt per scale per layer.
"""

from __future__ import annotations

from collections.abc import Callable

from afterburn_core.internals.model_parts import ModelParts
from afterburn_core.internals.types import AdlReading, PatchscopeReading, TokenScore

#: The token-identity prompt of the ADL paper: the model completes "?" with the token the patched state encodes.
IDENTITY_PROMPT = "man -> man\n1135 -> 1135\nhello -> hello\n?"
#: Multiples of the layer's mean residual norm written into the identity prompt: the paper searches a range
#: because too small a vector is ignored and too large one breaks the model; tokens stable across it matter.
PATCHSCOPE_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
#: Tokens kept per patchscope scale: a screen line, the list the persistence count reads.
PATCHSCOPE_TOP = 10
#: Promoted / demoted tokens kept per reading: the paper's and the issue's top-20.
ADL_TOP = 20


def _top(probabilities, token: Callable[[int, float], TokenScore], count: int) -> tuple[TokenScore, ...]:
    import torch

    found = torch.topk(probabilities, min(count, probabilities.numel()))
    return tuple(token(int(i), float(v)) for v, i in zip(found.values, found.indices))


def _readout(head, vector):
    import torch

    # ``vector`` is on the loaded model's input device; a head offloaded by accelerate moves it on from there
    # (its weight's own device is then meta).
    return torch.softmax(head.logits(vector[None, :])[0], dim=-1)


def patchscope(loaded, parts: ModelParts, layer: int, vector, prompt_ids) -> object:
    """Next-token probabilities at the identity prompt's last position with that position's state at
    ``layer`` replaced by ``vector``."""
    import torch

    def replace(_module, _inputs, output):
        states = output[0] if isinstance(output, (tuple, list)) else output
        states = states.clone()
        states[:, -1, :] = vector.to(states.dtype)
        return (states, *output[1:]) if isinstance(output, (tuple, list)) else states

    hook = parts.blocks[layer].register_forward_hook(replace)
    try:
        with torch.inference_mode():
            model = loaded.model
            logits = model(input_ids=prompt_ids.to(loaded.device), use_cache=False).logits
    finally:
        hook.remove()
    return torch.softmax(logits[0, -1].float(), dim=-1)


def read_adl(means, mean_norms, layers, loaded, parts: ModelParts, token: Callable[[int, float], TokenScore],
             token_text: Callable[[int], str]) -> tuple[tuple[AdlReading, ...], int]:
    """The readings of ``layers`` (each position, then the average) and the patchscope passes run."""
    import torch

    prompt_ids = loaded.tokenizer(IDENTITY_PROMPT, return_tensors="pt")["input_ids"]
    readings, passes = [], 0
    for layer in layers:
        device = loaded.device
        per_position = [means[layer, position].float().to(device) for position in range(means.shape[1])]
        # With k = 1 the one position is the whole reading; else each position, then their average.
        entries = [((position,), vector, False) for position, vector in enumerate(per_position)] \
            if len(per_position) > 1 else []
        entries.append((tuple(range(len(per_position))), torch.stack(per_position).mean(0), True))
        for positions, vector, averaged in entries:
            norm = float(vector.norm())
            scopes, persistent = (), ()
            if averaged and norm > 0:
                scopes = []
                for scale in PATCHSCOPE_SCALES:
                    patched = vector / norm * float(mean_norms[layer]) * scale
                    top = torch.topk(patchscope(loaded, parts, layer, patched, prompt_ids), PATCHSCOPE_TOP).indices
                    ids = tuple(int(i) for i in top)
                    scopes.append(PatchscopeReading(scale, tuple(token_text(i) for i in ids), ids))
                    passes += 1
                counts: dict[int, int] = {}
                for scope in scopes:
                    for token_id in scope.token_ids:
                        counts[token_id] = counts.get(token_id, 0) + 1
                persistent = tuple(token_text(i) for i, n in counts.items() if 2 * n >= len(PATCHSCOPE_SCALES))
                scopes = tuple(scopes)
            promoted = _top(_readout(parts.head, vector), token, ADL_TOP) if norm > 0 else ()
            demoted = _top(_readout(parts.head, -vector), token, ADL_TOP) if norm > 0 else ()
            readings.append(AdlReading(layer, positions, norm, promoted, demoted, scopes, persistent, averaged))
    return tuple(readings), passes
