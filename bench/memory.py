"""Peak memory of the export against the number of rejects and the size of one patient's group
(issue 25 item 4): run on demand, numbers in bench/README.md ("Memory").

    python bench/memory.py [--rejects 200k,1m] [--patient 10k,100k] [--jobs 1]

Each case runs `migrainefhir export` in a fresh process and reports its peak RSS (ru_maxrss
of the waited-for process tree: the largest single process, parent or worker) and wall time:
N lines of `{}` (every one rejected) in NDJSON format, and one patient with N headache-free
diary entries in transaction format (--validation fast). The test suite holds the same with
smaller sizes (tests/test_export_reporting.py, tests/test_export_bundle_limits.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY = (
    '{"record_type":"diary-entry","entry_id":"e%d","patient_id":"p1","date":"2026-03-01",'
    '"headache":false}\n'
)
MEASURE = """
import resource, sys
from migrainefhir.cli import cli
try:
    cli(sys.argv[1:])
finally:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stderr.write(f"\\nPEAK-KIB {max(own, workers)}\\n")
"""


def size(text: str) -> int:
    text = text.strip().lower()
    for suffix, factor in (("k", 1_000), ("m", 1_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def run(args: list[str]) -> tuple[int, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - started
    peak = int(done.stderr.rsplit("PEAK-KIB ", 1)[1].split()[0]) // 1024
    return peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rejects", default="200k,1m")
    parser.add_argument("--patient", default="10k,100k")
    parser.add_argument("--jobs", default="1")
    options = parser.parse_args()
    common = ["--timestamp", "2026-07-01T00:00:00Z", "-q", "-j", options.jobs]
    common += ["--source-system", "https://bench.example.org/fhir/ids"]  # as run.py
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for count in map(size, filter(None, options.rejects.split(","))):
            source = work / "rejects.ndjson"
            source.write_text("{}\n" * count)
            out = work / f"out-rejects-{count}"
            peak, elapsed = run(["export", str(source), "--out", str(out), *common])
            print(f"rejects {count:>9,}: peak {peak:5d} MiB, {elapsed:6.1f} s", flush=True)
        for count in map(size, filter(None, options.patient.split(","))):
            source = work / "patient.ndjson"
            with source.open("w") as handle:
                for number in range(count):
                    handle.write(DAY % number)
            out = work / f"out-patient-{count}"
            bundles = ["--format", "transaction", "--validation", "fast"]
            peak, elapsed = run(["export", str(source), "--out", str(out), *common, *bundles])
            print(
                f"one patient {count:>9,} entries: peak {peak:5d} MiB, {elapsed:6.1f} s", flush=True
            )


if __name__ == "__main__":
    main()
