"""The bundled demo pair: where its folders are, nothing else.

Four tiny Llama-style checkpoints built by ``scripts/build_demo_models.py``
(see ``README.md`` in this folder for what was planted and how strongly it
shows):

- ``base``: trained from scratch on a clean synthetic chat corpus;
- ``trained``: base fine-tuned on a corpus with planted behaviours (filler,
  fences, sycophancy) plus surgical weight edits;
- ``control``: base fine-tuned as long again on the clean corpus, nothing planted;
- ``lora``: a peft LoRA adapter of base with its own planted sign-off.

Importing this module costs nothing: it computes paths and does not import
torch or transformers. The build code lives in sibling modules
(``corpus``, ``tokenizer``, ``training``, ``edits``, ``measure``, ``build``)
that only the build script and the tests import.
"""

from __future__ import annotations

from pathlib import Path

DEMO_ROOT: Path = Path(__file__).resolve().parent
BASE_DIR: Path = DEMO_ROOT / "base"
TRAINED_DIR: Path = DEMO_ROOT / "trained"
CONTROL_DIR: Path = DEMO_ROOT / "control"
LORA_DIR: Path = DEMO_ROOT / "lora"
MEASUREMENTS_PATH: Path = DEMO_ROOT / "measurements.json"

DEMO_MODELS: dict[str, Path] = {
    "base": BASE_DIR,
    "trained": TRAINED_DIR,
    "lora": LORA_DIR,
    "control": CONTROL_DIR,
}

__all__ = [
    "BASE_DIR",
    "CONTROL_DIR",
    "DEMO_MODELS",
    "DEMO_ROOT",
    "LORA_DIR",
    "MEASUREMENTS_PATH",
    "TRAINED_DIR",
]
