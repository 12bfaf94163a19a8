"""What the user listed after ``--base``, as an ordered sequence of checkpoints with their steps.

Each argument is one checkpoint (a folder, a file, a LoRA adapter folder, a hub id, ``demo:…``), a
training output folder (every ``checkpoint-<step>`` folder inside it, ordered by step), or hub revisions
of one repository (``owner/name@rev1,rev2``). The arguments' order is the training order. A step is read
from the folder or revision name (``checkpoint-500``, ``step-500``), else from the checkpoint's
``trainer_state.json`` (``global_step``); given ``steps`` replace them; when some checkpoint has none,
every checkpoint is numbered by its place (1, 2, …). Steps must increase. What the trainer logged
(losses, rewards: ``log_history``) is read from each checkpoint's ``trainer_state.json``, else from the
training output folder's.

It checks names and the listing only; resolving the files is ``checkpoints.resolve``'s job. Cost: one
directory listing per folder argument and one read of each ``trainer_state.json``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from afterburn_core.checkpoints.references import parse_reference
from afterburn_core.errors import BadCheckpoint, BadInput
from afterburn_core.limits import load_json, quoted
from afterburn_core.trajectory.types import CheckpointSpec, StepSource

#: The folder name the transformers Trainer saves each checkpoint under (``PREFIX_CHECKPOINT_DIR``).
CHECKPOINT_FOLDER = re.compile(r"^checkpoint-(\d+)$")
#: A step at the end of a folder or revision name: ``checkpoint-500``, ``step500``, ``step_500``, ``iter-500``
#: (the spellings the Trainer, Pythia's hub revisions and OLMo's use).
STEP_IN_NAME = re.compile(r"(?:^|[^A-Za-z0-9])(?:checkpoint|global_step|step|iter)[-_]?(\d+)$", re.IGNORECASE)
#: The transformers Trainer's state file, saved in every checkpoint folder (and the output folder at the end).
TRAINER_STATE = "trainer_state.json"
#: Largest ``trainer_state.json`` read: a log line is ~200 bytes, so 64 MiB holds ~300 000 logged steps,
#: past any real run's logging, while a hostile file cannot take the memory.
MAX_TRAINER_STATE_BYTES = 64 * 2**20
#: Most checkpoints in one trajectory: every one is a run (a generation pass), so a thousand is already days
#: of work; a folder listing more is refused before any work rather than started.
MAX_CHECKPOINTS = 1000
#: Logged keys kept per step: the losses and rewards a trainer logs (``loss``, ``eval_loss``, ``reward``,
#: ``rewards/chosen``, ``rewards/margins``, ``objective/rlhf_reward``, …); learning rates, norms and timings
#: are left out.
LOGGED_KEY = re.compile(r"loss|reward", re.IGNORECASE)
#: Files whose presence means a folder is itself one checkpoint (a model or an adapter).
MODEL_MARKERS = ("config.json", "adapter_config.json")
MODEL_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def discover(references: Sequence[str], steps: Sequence[int] | None = None) -> tuple[CheckpointSpec, ...]:
    """The checkpoints ``references`` name, in training order, each with its step and logged values."""
    if not references:
        raise BadInput("a trajectory needs at least one checkpoint after the base: checkpoint folders, a training "
                       "output folder holding checkpoint-<step> folders, or owner/name@rev1,rev2")
    found: list[tuple[str, int | None, StepSource, Path | None]] = []
    for text in references:
        found += _expand(text)
    if len(found) > MAX_CHECKPOINTS:
        raise BadInput(f"{len(found)} checkpoints listed; a trajectory takes at most {MAX_CHECKPOINTS}: "
                       "give every few checkpoints instead of all")
    if steps is not None:
        if len(steps) != len(found):
            raise BadInput(f"{len(steps)} steps given for {len(found)} checkpoints; give one step per checkpoint")
        numbered = [(reference, int(step), "given") for (reference, *_), step in zip(found, steps)]
    elif all(step is not None for _, step, _, _ in found):
        numbered = [(reference, step, source) for reference, step, source, _ in found]
    else:
        numbered = [(reference, place, "position") for place, (reference, *_) in enumerate(found, start=1)]
    _check_order(numbered)
    return tuple(CheckpointSpec(reference, step, source, _logged(folder, step))
                 for (reference, step, source), (_, _, _, folder) in zip(numbered, found))


def _expand(text: str) -> list[tuple[str, int | None, StepSource, Path | None]]:
    """One argument as (reference, step or None, where the step came from, folder of its trainer state)."""
    text = text.strip()
    path = Path(text).expanduser()
    if path.is_dir():
        checkpoints = sorted((int(match.group(1)), child) for child in path.iterdir()
                             if child.is_dir() and (match := CHECKPOINT_FOLDER.match(child.name)))
        if checkpoints:
            return [(str(child), step, "name", child) for step, child in checkpoints]
        if not _holds_model(path):
            raise BadInput(f"{quoted(text)} holds no checkpoint-<step> folder and no model; give a training output "
                           "folder (with checkpoint-500/, checkpoint-1000/ …) or one checkpoint folder")
        step, source = _step_of(path)
        return [(text, step, source, path)]
    parsed = parse_reference(text)
    if parsed.kind == "hub" and parsed.revision and "," in parsed.revision:
        revisions = [revision.strip() for revision in parsed.revision.split(",")]
        if not all(revisions):
            raise BadInput(f"{quoted(text)} has an empty revision; write owner/name@rev1,rev2 without blanks")
        return [(f"{parsed.repo_id}@{revision}", _step_in_name(revision), "name", None) for revision in revisions]
    name = parsed.revision if parsed.kind == "hub" and parsed.revision else path.stem
    return [(text, _step_in_name(name), "name", None)]


def _holds_model(folder: Path) -> bool:
    return any(child.name in MODEL_MARKERS or child.suffix in MODEL_SUFFIXES
               for child in folder.iterdir() if child.is_file())


def _step_in_name(name: str) -> int | None:
    match = CHECKPOINT_FOLDER.match(name) or STEP_IN_NAME.search(name)
    return int(match.group(1)) if match else None


def _step_of(folder: Path) -> tuple[int | None, StepSource]:
    """A checkpoint folder's step: from its name, else its trainer state's ``global_step``."""
    step = _step_in_name(folder.name)
    if step is not None:
        return step, "name"
    state = read_trainer_state(folder / TRAINER_STATE)
    global_step = state.get("global_step") if state else None
    if isinstance(global_step, int) and not isinstance(global_step, bool) and global_step >= 0:
        return global_step, "trainer_state"
    return None, "position"


def _check_order(numbered: list[tuple[str, int, str]]) -> None:
    """Steps must be distinct, not negative, and increase in the order given (the training order)."""
    for reference, step, _ in numbered:
        if step < 0:
            raise BadInput(f"step {step} of {quoted(reference)} is negative; steps count from 0")
    for (earlier, earlier_step, _), (later, later_step, _) in zip(numbered, numbered[1:]):
        if later_step == earlier_step:
            raise BadInput(f"duplicate step {later_step}: {quoted(earlier)} and {quoted(later)}; each checkpoint "
                           "needs its own step (give them with --steps)")
        if later_step < earlier_step:
            raise BadInput(f"step {later_step} ({quoted(later)}) is listed after step {earlier_step} "
                           f"({quoted(earlier)}); list the checkpoints in training order")


def read_trainer_state(path: Path) -> dict | None:
    """``trainer_state.json`` as an object, None when there is none; ``BadCheckpoint`` when it is unreadable."""
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_TRAINER_STATE_BYTES:
        raise BadCheckpoint(f"{path} is {path.stat().st_size:,} bytes, over the {MAX_TRAINER_STATE_BYTES:,} a "
                            "trainer state may have; remove it or trim its log_history")
    try:
        state = load_json(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as error:
        raise BadCheckpoint(f"{path} is not valid JSON ({str(error).splitlines()[0]}); remove or repair it") from None
    if not isinstance(state, dict):
        raise BadCheckpoint(f"{path} holds a {type(state).__name__}, not the Trainer's state object; remove it")
    return state


def _logged(folder: Path | None, step: int) -> dict[str, float]:
    """The last value of each loss / reward key the trainer logged at or before ``step``."""
    if folder is None:
        return {}
    state = read_trainer_state(folder / TRAINER_STATE) or read_trainer_state(folder.parent / TRAINER_STATE)
    history = state.get("log_history") if state else None
    if not isinstance(history, list):
        return {}
    values: dict[str, float] = {}
    for entry in history:
        at = entry.get("step") if isinstance(entry, dict) else None
        if not isinstance(at, int) or isinstance(at, bool) or at > step:
            continue
        for key, value in entry.items():
            if (isinstance(key, str) and LOGGED_KEY.search(key) and isinstance(value, (int, float))
                    and not isinstance(value, bool) and math.isfinite(value)):
                values[key] = float(value)
    return values
