"""Build the bundled demo models: base, trained, control and a LoRA adapter.

Thin door to ``afterburn_core.demo.build``: parses arguments, calls
``build_demo``, prints the run time. Deterministic: the same scale on the same
machine (CPU, same torch) writes byte-identical ``model.safetensors`` files.

    python scripts/build_demo_models.py                 # the shipped artefacts (~6 min, 2 cores)
    python scripts/build_demo_models.py --out /tmp/d --scale 0.02   # a tiny build (~15 s)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Lets the script run from a plain checkout; unnecessary once the package is installed.
sys.path.insert(0, str(REPO_ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "afterburn_core" / "demo",
                        help="folder to write base/, trained/, control/, lora/, README.md, measurements.json")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies every training step count (0.02 for a quick smoke build)")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error(f"--scale must be > 0, got {args.scale}")

    from transformers.utils import logging as transformers_logging

    from afterburn_core.demo.build import build_demo  # imports torch: after argument parsing

    transformers_logging.disable_progress_bar()  # per-file bars drown the step log

    started = time.monotonic()
    record = build_demo(args.out.resolve(), scale=args.scale)
    print(f"built demo models in {time.monotonic() - started:.1f} s -> {args.out}")
    for name, rates in record["behaviour"].items():
        print(f"  {name:8s} " + "  ".join(f"{key}={value:g}" for key, value in rates.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
