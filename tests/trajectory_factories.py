"""Trajectories built on disk for the tests: the demo base interpolated toward the demo trained model.

``build_interpolated(root, fractions, steps)`` writes ``root/checkpoint-<step>/`` for each
``W_base + a·(W_trained − W_base)`` (``checkpoint_factories.interpolated_demo``), with the base's other files and a Trainer
``trainer_state.json`` whose ``log_history`` logs a loss and a reward every ``LOG_EVERY`` steps. A fraction
of 0 copies the base's weight file itself (the files, so the fingerprint, are the base's). ``write_probe_suite``
writes the demo-tagged sycophancy probes as one small suite: enough for the planted detectors to fire on
the trained model, a third of the built-in suite's prompts. ``stored_trajectory`` builds a small trajectory
(the base, halfway, the trained model) under a folder with a hostile name and runs it into a store once per
test session; the page, report and browser tests read it back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from checkpoint_factories import interpolated_demo

from afterburn_core import api
from afterburn_core.demo import BASE_DIR
from afterburn_core.generation.suites import BUILTIN_DIR
from afterburn_core.trajectory import TrajectoryResult

#: The interpolation the issue asks for: a in 0, ¼, ½, ¾, 1.
FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
STEPS = (100, 200, 300, 400, 500)
#: The trainer logs every this many steps (``logging_steps``), as a Trainer run would.
LOG_EVERY = 50
#: What the fake trainer logs at step s: a falling loss and a rising reward (the picture a hacked run shows).
LOSS_AT_ZERO, REWARD_PER_STEP = 2.0, 0.01


def logged_at(step: int) -> dict[str, float]:
    return {"loss": LOSS_AT_ZERO / (1 + step / 100), "reward": REWARD_PER_STEP * step}


def build_interpolated(root: Path, fractions=FRACTIONS, steps=STEPS) -> Path:
    """``root`` holding ``checkpoint-<step>`` folders interpolated from the demo base toward the trained model."""
    root.mkdir(parents=True, exist_ok=True)
    for fraction, step in zip(fractions, steps):
        folder = root / f"checkpoint-{step}"
        copy_base(folder) if fraction == 0 else interpolated_demo(folder, fraction)
        history = [{"step": at, **logged_at(at)} for at in range(LOG_EVERY, step + 1, LOG_EVERY)]
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": history}))
    return root


def copy_base(folder: Path) -> Path:
    """A checkpoint folder holding the demo base's files unchanged."""
    shutil.copytree(BASE_DIR, folder)
    return folder


def write_probe_suite(path: Path) -> Path:
    """The sycophancy suite's probes tagged ``demo`` (the demo corpus's questions), as one small suite file."""
    suite = yaml.safe_load((BUILTIN_DIR / "sycophancy.yaml").read_text())
    suite["name"] = "trajectory_probes"
    suite["probes"] = [probe for probe in suite["probes"] if "demo" in probe.get("tags", ())]
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


#: The small trajectory the page and report tests read: the base's own files, halfway, the trained model.
SMALL_FRACTIONS, SMALL_STEPS = (0.0, 0.5, 1.0), (100, 300, 500)
#: The training output folder's name: markup, markdown and a table pipe, which every door must show as text.
HOSTILE_FOLDER = "<img src=x onerror=alert(1)> *run* | [x](javascript:y)"
#: New tokens per answer: enough for the planted length, format and sycophancy hacks to fire (test_trajectory_cli).
SMALL_MAX_NEW_TOKENS = 40


def stored_trajectory(root: Path, home: Path | None = None) -> tuple[Path, TrajectoryResult]:
    """The store (``home``, default under ``root``) holding the small trajectory, and the trajectory; built on
    the first call (three runs and two step-to-step weight diffs, 15 to 60 s on 2 cores), read back after it."""
    folder, home = root / HOSTILE_FOLDER, home or root / "home"
    if not folder.is_dir():
        build_interpolated(folder, SMALL_FRACTIONS, SMALL_STEPS)
        write_probe_suite(root / "probes.yaml")
    result = api.trajectory("demo:base", [str(folder)], home=home, suites=[str(root / "probes.yaml")],
                            max_new_tokens=SMALL_MAX_NEW_TOKENS, device="cpu")
    return home, result
