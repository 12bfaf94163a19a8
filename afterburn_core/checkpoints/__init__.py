"""Checkpoints: from what the user typed to checked files, fingerprints, tensor headers and tensors.

Public API:

- ``resolve(reference, *, adapter_base=None, token=None) -> ResolvedCheckpoint``
- ``resolve_pair(base_ref, trained_ref, *, adapter_base=None, token=None)``
- ``recompute_fingerprint(ckpt) -> str`` (from the files as they are now; ``resolve`` already sets it)
- ``open_tensor_index(ckpt) -> TensorIndex`` and ``normalize_tensor_name(name)``
- ``summarize(ckpt) -> CheckpointSummary``

One module per job: ``references`` (what a string names), ``local`` (files of a
folder, checked), ``description`` (config.json / adapter_config.json into the
``ModelDescription`` a resolved checkpoint carries), ``hub`` (Hugging Face
cache and downloads), ``pickles`` (the only ``torch.load``, weights_only),
``fingerprint``, ``tensors``, ``summary``, ``pairing`` (the tie-aware plan
that pairs two checkpoints' tensors, and the inventory), ``resolution``
(``resolve``, ``resolve_pair``: ties them together). Importing this package does not import torch;
reading a tensor or a pickle does.
"""

from afterburn_core.checkpoints.fingerprint import recompute_fingerprint
from afterburn_core.checkpoints.resolution import resolve, resolve_pair
from afterburn_core.checkpoints.summary import summarize
from afterburn_core.checkpoints.tensors import TensorIndex, normalize_tensor_name, open_tensor_index

__all__ = [
    "TensorIndex",
    "normalize_tensor_name",
    "open_tensor_index",
    "recompute_fingerprint",
    "resolve",
    "resolve_pair",
    "summarize",
]
