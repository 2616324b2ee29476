"""What the run-wide duplicate-id check costs: memory and time per id, for N distinct ids.

Run: python bench/duplicate_ids.py [N ...]   (default 10000 100000 1000000)

Each N runs in a fresh process, which feeds N distinct diary-entry ids (and then N/100 of them
again, which must all be reported) to the tracker the export's merge uses, and prints the
growth of its peak RSS over the process before the tracker was made (ru_maxrss), and the
microseconds per check: with the table sized for N from the start, as the export sizes it
(from its input's line count), and grown from the smallest table, as when the input's records
could not be counted (a JSON file). Flat memory means the RSS growth does not depend on N.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

from migrainefhir.input.intake import CompactDuplicateIds
from migrainefhir.problems import Source


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(count: int, sized: bool) -> dict[str, float | str]:
    before = _peak_rss_mib()
    tracker = CompactDuplicateIds(count if sized else 0)
    started = time.perf_counter()
    for number in range(count):
        tracker.check("diary-entry", f"entry-{number:09d}", Source("in.ndjson", line=number + 1))
    seconds = time.perf_counter() - started
    repeats = sum(
        bool(tracker.check("diary-entry", f"entry-{n:09d}", Source("in.ndjson", line=count + n)))
        for n in range(0, count, 100)
    )
    tracker.close()
    if repeats != len(range(0, count, 100)):
        raise SystemExit(f"missed duplicates: {repeats} of {len(range(0, count, 100))}")
    return {
        "ids": count,
        "table": "sized" if sized else "grown",
        "rss_growth_mib": round(_peak_rss_mib() - before, 1),
        "us_per_check": round(seconds / count * 1e6, 2),
    }


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--one":
        print(measure(int(argv[1]), argv[2] == "sized"))
        return
    for count in [int(n) for n in argv] or [10_000, 100_000, 1_000_000]:
        for table in ("sized", "grown"):
            # A fresh process per run: a peak RSS, once reached, never goes down.
            subprocess.run([sys.executable, __file__, "--one", str(count), table], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
