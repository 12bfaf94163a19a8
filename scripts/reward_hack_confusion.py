"""Print the reward-hack confusion matrix on the planted pairs (and optionally write it to a file).

Thin door to ``afterburn_core.reward_hack.validation``: builds each planted
pair over the built-in suites, runs the behaviour statistics and the
reward-hack detectors on it, and prints one Markdown table (rows: planted
pair; columns: detectors and the composite). Takes about 5 s per pair on 2 cores.

    python scripts/reward_hack_confusion.py
    python scripts/reward_hack_confusion.py --write docs/reward-hack-confusion.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Lets the script run from a plain checkout; unnecessary once the package is installed.
sys.path.insert(0, str(REPO_ROOT))


def main(argv: list[str] | None = None) -> int:
    from afterburn_core.config import TRAINING_METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=TRAINING_METHODS, default="unknown",
                        help="declared training method whose composite weights are used")
    parser.add_argument("--seed", type=int, default=0, help="seed of the control pair's noise and the resampling")
    parser.add_argument("--write", type=Path, default=None, help="also write the Markdown to this file")
    args = parser.parse_args(argv)

    from afterburn_core.reward_hack.validation import (
        PAIRS,
        confusion_markdown,
        run_pair,
    )

    results = {pair: run_pair(pair, args.method, args.seed) for pair in PAIRS}
    document = confusion_markdown(results, args.method, args.seed)
    print(document, end="")
    if args.write is not None:
        args.write.write_text(document, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
