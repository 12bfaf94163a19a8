"""The only door through which a pickle checkpoint (``.bin`` / ``.pt`` / ``.pth``) is opened.

Contract: ``load_pickle_state_dict(path)`` returns ``{name: tensor}`` read with
``torch.load(path, map_location="cpu", weights_only=True, mmap=...)``. The
weights_only unpickler runs no code from the file: a payload that would (a
``__reduce__`` calling ``os.system``, any non-allowlisted global) is refused
before anything of it executes, and that refusal becomes ``UnsafeCheckpoint``.
Any other failure to read becomes ``BadCheckpoint``. ``resolve`` loads every
pickle once (``local.py``) so a hostile or broken file is reported before any
analysis starts.

It leaves to others: which files to open (``local.py``), tensor listing and
name matching (``tensors.py``). It never offers a ``weights_only=False`` path.

Cost: zip-format files (every ``torch.save`` since torch 1.6, every
``pytorch_model.bin`` written by transformers) are memory-mapped (``mmap=True``):
unpickling reads only the small pickle of the structure, tensor bytes are paged
in on first touch. Legacy (pre-zip) files cannot be mapped, so loading one reads
the whole file into memory.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from afterburn_core.errors import BadCheckpoint, UnsafeCheckpoint

#: Keys under which training frameworks nest a state dict in a ``.pt`` file (Lightning
#: writes ``state_dict``, many research scripts ``model`` / ``module``); tried in this order
#: when the top level holds no tensors.
NESTED_STATE_DICT_KEYS = ("state_dict", "model", "module")


def _refusal_reason(error: BaseException) -> str:
    """The core of torch's weights_only refusal, e.g. "Unsupported global: GLOBAL os.system"."""
    cause = error.__cause__ or error.__context__
    text = str(cause) if isinstance(cause, pickle.UnpicklingError) else str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    for cut in (" was not an allowed global", ". Please", " Please"):
        reason = reason.split(cut, 1)[0]
    return reason.rstrip(".")[:200]


def torch_load_weights_only(path: Path) -> object:
    """``torch.load`` with ``weights_only=True`` (mmap for zip archives), errors translated."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpoint(
            f"{path} holds pickled code that weights_only loading refuses ({_refusal_reason(error)}); "
            "it was not run. Convert it to safetensors or load it only if you trust it."
        ) from None
    except FileNotFoundError:
        raise BadCheckpoint(f"{path} is missing; re-download or re-save the checkpoint.") from None
    except Exception as error:  # torch raises RuntimeError, KeyError, EOFError, zipfile errors…
        detail = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise BadCheckpoint(
            f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}: {detail}); "
            "re-download or re-save it."
        ) from None


def _tensors_of(loaded: object, path: Path) -> dict:
    import torch

    if isinstance(loaded, dict):
        tensors = {str(key): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}
        if tensors:
            return tensors
        for key in NESTED_STATE_DICT_KEYS:
            nested = loaded.get(key)
            if isinstance(nested, dict):
                tensors = {str(name): value for name, value in nested.items() if isinstance(value, torch.Tensor)}
                if tensors:
                    return tensors
    raise BadCheckpoint(
        f"{path} holds no state dict of tensors (found {type(loaded).__name__}); "
        "save the model's state_dict() or use safetensors."
    )


def load_pickle_state_dict(path: Path) -> dict:
    """``{name: tensor}`` of a pickle checkpoint, tensors memory-mapped where the format allows."""
    return _tensors_of(torch_load_weights_only(path), Path(path))
