"""The report benchmark: `migrainefhir report` against `migrainefhir export` on the same input.

    python bench/report.py --size 100k --repeat 3 [--jobs N]

Makes the input once with bench/synth.py (seed 1, cached under --work, as bench/run.py), then
runs, --repeat times in turn: `export --validation full` and `--validation fast` (ndjson,
--jobs N) and `report` (one process: it reads the input once and keeps per-day aggregates).
Prints each run's wall time and peak memory of the process tree, and the ratio of the report's
median time to each export's. The issue's bar: the report takes at most twice the export's
time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import PYTHON, SIZES, make_input, measure, run_export


def run_report(data: Path, out: Path) -> dict[str, Any]:
    command = [PYTHON, "-m", "migrainefhir", "report", str(data), "--out", str(out), "-q"]
    command += ["--source-system", "https://example.org/migrainefhir/source"]  # as run.py's export
    result = measure(command)
    result.pop("stdout")
    result["windows"] = (out / "metrics.csv").read_bytes().count(b"\n") - 1
    result["pages"] = len(list((out / "patients").iterdir())) + 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", choices=sorted(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/migrainefhir-bench"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    data = make_input(args.work, SIZES[args.size])
    seconds: dict[str, list[float]] = {"export full": [], "export fast": [], "report": []}
    for repeat in range(args.repeat):
        for program in seconds:
            out = args.work / f"out-{program.replace(' ', '-')}"
            if program == "report":
                result = run_report(data, out)
            else:
                result = run_export(data, out, args.jobs, program.split()[1])
            result.update(program=program, repeat=repeat, size=args.size, jobs=args.jobs)
            seconds[program].append(result["seconds"])
            print(json.dumps(result), flush=True)
    report = statistics.median(seconds["report"])
    print()
    for program, values in seconds.items():
        median = statistics.median(values)
        print(f"{program}: median {median:.2f} s ({min(values):.2f}-{max(values):.2f})")
    for program in ("export full", "export fast"):
        ratio = report / statistics.median(seconds[program])
        print(f"report / {program}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
