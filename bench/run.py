"""The export benchmark: floor, export --validation fast and full, in one run, per input size.

    python bench/run.py --sizes 10k,100k,1m --repeat 3 [--jobs N] [--modes floor,fast,full]

For each size, makes the input once with bench/synth.py (seed 1, cached under --work), then
runs, --repeat times in turn: the floor program (bench/floor.py), `migrainefhir export` in each
validation mode (ndjson format), all with the same --jobs. Records per run: resources written,
wall time, resources/s, the ratio to the floor's resources/s of the same repeat, and the peak
RSS (VmRSS, sampled every 0.1 s) and PSS (which counts pages shared after fork once; sampled
every second: computing it walks every page) summed over the whole process tree. Also the
start-up time of `migrainefhir --help` (median of 10) and `validate_bundle` on 10k and 100k
entries (bench/validate_scaling.py).

Prints a Markdown table of medians (min-max) and writes every run to --results (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}


def _tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc/PID/task/TID/children."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def _summed(pids: list[int], file: str, field: str) -> int:
    """The `field` (KiB) of /proc/PID/`file`, summed over `pids` (a process gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{file}") as handle:
                for line in handle:
                    if line.startswith(field):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


# The sampler shares the cores with what it measures. VmRSS (status) is a counter the kernel
# keeps: cheap to read 10 times a second. PSS (smaps_rollup) is computed by walking every page
# of the process: read once a second, so the walks do not slow the run they measure.
_SAMPLE_SECONDS = 0.1
_PSS_EVERY = 10


def measure(command: list[str]) -> dict[str, Any]:
    """Run `command`; wall seconds, peak RSS and PSS of its process tree (MiB), and stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_rss = peak_pss = samples = 0
    while process.poll() is None:
        pids = _tree(process.pid)
        peak_rss = max(peak_rss, _summed(pids, "status", "VmRSS:"))
        if samples % _PSS_EVERY == 0:
            peak_pss = max(peak_pss, _summed(pids, "smaps_rollup", "Pss:"))
        samples += 1
        time.sleep(_SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode not in (0, 1):
        raise SystemExit(f"{command} failed ({process.returncode}): {err.decode()[-2000:]}")
    return {
        "seconds": seconds,
        "peak_rss_mib": peak_rss / 1024,
        "peak_pss_mib": peak_pss / 1024,
        "stdout": out.decode(),
    }


def make_input(work: Path, entries: int) -> Path:
    folder = work / f"input-{entries}"
    if not (folder / "diary-entries.ndjson").exists():
        subprocess.run(
            [
                PYTHON,
                str(BENCH / "synth.py"),
                "--diary-entries",
                str(entries),
                "--seed",
                "1",
                "--format",
                "ndjson",
                "--out",
                str(folder),
            ],
            check=True,
        )
    return folder


def run_floor(data: Path, out: Path, jobs: int) -> dict[str, Any]:
    floor = [PYTHON, str(BENCH / "floor.py"), str(data), "--out", str(out), "--jobs", str(jobs)]
    result = measure(floor)
    result["resources"] = json.loads(result.pop("stdout"))["resources"]
    return result


def run_export(data: Path, out: Path, jobs: int, mode: str) -> dict[str, Any]:
    if out.exists() and not (out / ".migrainefhir-export").exists():
        shutil.rmtree(out)  # a work folder of a version before the marker: export refuses it
    command = [PYTHON, "-m", "migrainefhir", "export", str(data), "--out", str(out), "-q"]
    command += ["--jobs", str(jobs), "--validation", mode, "--timestamp", "2026-07-01T00:00:00Z"]
    command += ["--source-system", "https://bench.example.org/fhir/ids"]
    result = measure(command)
    result.pop("stdout")
    summary = json.loads((out / "summary.json").read_text())
    result["resources"] = sum(summary["resources"].values())
    result["records_rejected"] = summary["records_rejected"]
    return result


def startup(command: list[str], repeat: int = 10) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def bundle_scaling() -> str:
    done = subprocess.run(
        [PYTHON, str(BENCH / "validate_scaling.py"), "10000", "100000"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"validate_scaling.py failed:\n{done.stderr[-2000:]}"
    return done.stdout


def _spread(values: list[float], digits: int = 0) -> str:
    fmt = f"{{:,.{digits}f}}"
    median = fmt.format(statistics.median(values))
    return f"{median} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| size | program | resources | seconds | resources/s | × floor throughput | "
        "peak RSS, all processes (MiB) | peak PSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted({(r["size"], r["program"]) for r in runs}, key=lambda k: (SIZES[k[0]], k[1]))
    for size, program in keys:
        mine = [r for r in runs if r["size"] == size and r["program"] == program]
        lines.append(
            f"| {size} | {program} | {mine[0]['resources']:,} | "
            f"{_spread([r['seconds'] for r in mine], 1)} | "
            f"{_spread([r['per_second'] for r in mine])} | "
            f"{_spread([r['ratio'] for r in mine], 3)} | "
            f"{_spread([r['peak_rss_mib'] for r in mine])} | "
            f"{_spread([r['peak_pss_mib'] for r in mine])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--modes", default="floor,fast,full")
    parser.add_argument("--work", type=Path, default=Path("/tmp/migrainefhir-bench"))
    parser.add_argument("--results", type=Path, default=BENCH / "results.json")
    parser.add_argument("--no-bundle", action="store_true", help="skip validate_bundle scaling")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for size in args.sizes.split(","):
        data = make_input(args.work, SIZES[size])
        for repeat in range(args.repeat):
            floor = None
            for program in modes:
                out = args.work / f"out-{program}"
                if program == "floor":
                    result = run_floor(data, out, args.jobs)
                else:
                    result = run_export(data, out, args.jobs, program)
                result.update(size=size, program=program, repeat=repeat, jobs=args.jobs)
                result["per_second"] = result["resources"] / result["seconds"]
                if program == "floor":
                    floor = result["per_second"]
                result["ratio"] = result["per_second"] / floor if floor else float("nan")
                runs.append(result)
                print(json.dumps(result), flush=True)
    report: dict[str, Any] = {
        "runs": runs,
        "help_seconds": startup([PYTHON, "-m", "migrainefhir", "--help"]),
        # for scale, in the same run: the interpreter alone, and the CLI framework alone
        "python_seconds": startup([PYTHON, "-c", "pass"]),
        "click_seconds": startup([PYTHON, "-c", "import click"]),
    }
    if not args.no_bundle:
        report["bundle_scaling"] = bundle_scaling()
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(runs))
    print(f"\n`migrainefhir --help`: {_spread(report['help_seconds'], 3)} s (median of 10); "
          f"`python -c pass` {_spread(report['python_seconds'], 3)} s, "
          f"`python -c 'import click'` {_spread(report['click_seconds'], 3)} s")  # fmt: skip
    if "bundle_scaling" in report:
        print("\nvalidate_bundle:\n" + report["bundle_scaling"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
