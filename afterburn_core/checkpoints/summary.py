"""What one checkpoint holds, from its ``ModelDescription`` and the tensor headers.

Contract: ``summarize(ckpt)`` returns a ``CheckpointSummary``: architecture,
``model_type``, layer count, hidden size and vocabulary size as resolution
read them from the config (the base's config for an adapter; see
``description.py``), and the tensor count, parameter count (per dtype) and
bytes of the checkpoint's own tensors (an adapter's factors, not its base). A
field the config lacks is ``None``, never a guess.

It leaves to others: parsing the config (``description.py``, at resolution),
comparing two summaries (the inventory analysis, ``pairing.py``).
Cost: the headers (see ``tensors.py``); no JSON read, no tensor data.
"""

from __future__ import annotations

from afterburn_core.checkpoints.tensors import open_tensor_index
from afterburn_core.types import CheckpointSummary, ResolvedCheckpoint


def summarize(checkpoint: ResolvedCheckpoint) -> CheckpointSummary:
    """Summary of ``checkpoint`` from its description and tensor headers."""
    description = checkpoint.description
    with open_tensor_index(checkpoint) as index:
        return CheckpointSummary(
            checkpoint=checkpoint,
            architecture=description.architecture,
            model_type=description.model_type,
            num_layers=description.num_layers,
            hidden_size=description.hidden_size,
            vocab_size=description.vocab_size,
            num_tensors=len(index),
            num_parameters=index.num_parameters,
            parameters_by_dtype=index.parameters_by_dtype,
            size_bytes=index.size_bytes,
        )
