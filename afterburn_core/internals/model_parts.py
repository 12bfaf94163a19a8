"""The parts of a loaded causal LM the internals analysis reads: decoder blocks, final norm, unembedding.

Contract: ``model_parts(loaded, architecture) -> ModelParts`` or ``AnalysisSkipped``
with the sentence saying what could not be found. The blocks are found through
the architecture map's decoder-block path (``model.layers``, ``transformer.h``,
``model.decoder.layers``: derived from the transformers model code, not from a
list of names kept here). The final norm is the one norm module that sits beside
the block stack in its parent (``model.norm``, ``transformer.ln_f``,
``model.decoder.final_layer_norm``): the module every architecture applies
between the last block and the unembedding. An OPT-style ``project_out`` beside
it is applied too. ``final_logit_softcapping`` (Gemma 2/3) is applied as the
model's own head applies it, so the lens of the last block is the model's own
output distribution (tested on every architecture the weights engine supports).

``LensHead`` is the readout "final norm → unembedding (→ soft cap)"; ``copy()``
keeps a detached copy of it so the base's lens can be read after the base model
is released (one head in memory beside the trained model, not a second model).
Cost: nothing beyond attribute lookups; a copied head holds vocab × hidden
parameters.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from afterburn_core.checkpoints.architecture import ArchitectureMap
from afterburn_core.errors import AnalysisSkipped


@dataclass
class LensHead:
    """Final norm (None where the model has none) → optional projection → unembedding → optional soft cap."""

    norm: object | None
    project_out: object | None
    unembedding: object
    softcap: float | None

    def logits(self, hidden):
        """Next-token logits (fp32) this head reads from residual states ``hidden`` [..., hidden]."""
        import torch

        states = hidden.to(self.unembedding.weight.dtype)
        if self.norm is not None:
            states = self.norm(states)
        if self.project_out is not None:
            states = self.project_out(states)
        logits = self.unembedding(states).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def copy(self) -> LensHead:
        """A deep copy that outlives the model it came from."""
        return LensHead(copy.deepcopy(self.norm), copy.deepcopy(self.project_out),
                        copy.deepcopy(self.unembedding), self.softcap)


@dataclass
class ModelParts:
    """The decoder blocks in order and the lens head of one loaded model."""

    blocks: list
    head: LensHead


def _causal_lm(model):
    """The transformers ``…ForCausalLM`` inside ``model`` (a peft wrapper holds it as its base model)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _is_norm(module) -> bool:
    return "norm" in type(module).__name__.lower()


def model_parts(model, architecture: ArchitectureMap) -> ModelParts:
    """Blocks and lens head of ``model`` (a loaded transformers causal LM, or a peft model around one)."""
    lm = _causal_lm(model)
    path = architecture.decoder_path
    why = "; ".join(architecture.reasons) or "the model code names no single stack of decoder blocks"
    if path is None:
        raise AnalysisSkipped(f"internals reads the decoder blocks, and the architecture map found none: {why}")
    try:
        blocks = lm.get_submodule(path)
    except AttributeError:
        raise AnalysisSkipped(
            f"internals reads the decoder blocks at {path}, which this {type(lm).__name__} does not have"
        ) from None
    parent_path, _, stack_name = path.rpartition(".")
    parent = lm.get_submodule(parent_path) if parent_path else lm
    norms = [module for name, module in parent.named_children() if name != stack_name and _is_norm(module)]
    if len(norms) > 1:
        raise AnalysisSkipped(
            f"internals needs the final norm beside {path}, and {type(parent).__name__} holds {len(norms)} norms"
        )
    unembedding = lm.get_output_embeddings()
    if unembedding is None:
        raise AnalysisSkipped(f"{type(lm).__name__} has no output embedding to read the logit lens through")
    softcap = getattr(lm.config, "final_logit_softcapping", None)
    head = LensHead(norms[0] if norms else None, getattr(parent, "project_out", None), unembedding,
                    float(softcap) if softcap else None)
    return ModelParts(list(blocks), head)


def block_output(output):
    """The residual stream a decoder block returns (a tensor, or the first item of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output
