"""Inside the forward pass: what post-training changed in the residual stream, and what it reads as.

``analyze_internals`` (``analysis``) runs both models on the bundled neutral corpus (``corpus``) and the
run's suite prompts, one model in memory at a time (``passes``), reduces their block outputs on the fly
(``readings``: activation differences, differential logit lens) and reads the mean difference on the
first tokens through the trained model (``adl``: activation-difference lens and patchscope). The
decoder blocks, final norm and unembedding come from the architecture map (``model_parts``).
"""

from afterburn_core.internals.types import InternalsResult

__all__ = ["InternalsResult"]
