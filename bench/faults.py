"""The fault harness at length: many seeded kill trials against the real command line.

tests/test_faults.py runs one trial per victim (parent, worker) and signal (SIGKILL, SIGTERM,
SIGINT); this runs as many rounds as asked, each at fresh random points, on a larger input, and
stops at the first broken guarantee (the failing trial's fault and seed are printed, so it can
be replayed). Linux only (it reads /proc).

    python bench/faults.py --rounds 10 --seed 1 --entries 20000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from tests import test_faults  # noqa: E402 (needs the path above)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 6 trials")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--entries", type=int, default=20_000, help="diary entries of the input")
    parser.add_argument("--latest", type=float, default=5.0, help="latest kill, in seconds")
    args = parser.parse_args(argv)
    test_faults.LATEST_KILL = args.latest
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        large, small, previous = folder / "large.ndjson", folder / "small.ndjson", folder / "prev"
        test_faults.write_input(large, args.entries)
        test_faults.write_input(small, 5)
        test_faults.subprocess.run(
            test_faults.command(small, previous, "1"), env=test_faults.ENV, check=True
        )
        for number, fault in enumerate(test_faults.faults(args.seed, args.rounds), 1):
            trial = folder / f"trial-{number}"
            trial.mkdir()
            started = time.monotonic()
            try:
                test_faults.run_trial(fault, trial, large, small, previous)
            except AssertionError as failure:
                print(f"trial {number} (seed {args.seed}): {fault}: FAILED: {failure}")
                return 1
            print(f"trial {number}: {fault}: ok ({time.monotonic() - started:.1f} s)")
            test_faults.shutil.rmtree(trial)
    return 0


if __name__ == "__main__":
    sys.exit(main())
