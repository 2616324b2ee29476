"""The Spark engine beside the local one: the same input, the same bytes, the time of each.

    python bench/spark.py [--size 100k] [--master 'local[2]'] [--jobs 2] [--validation fast]

Makes the input with bench/synth.py (seed 1, cached under --work, as bench/run.py does), then:

1. the local engine: `migrainefhir export --jobs N` in a subprocess (wall time);
2. Spark, in this process: the start of a SparkSession on --master (the JVM, the context),
   timed apart; then `export_on_spark` twice on that session, each timed (the first also
   starts the executors' Python workers and their imports; the second is what a notebook or a
   long-lived session pays per export);
3. on the same session, `export_on_spark` with the input and --out as URIs of a file system
   only Spark reaches (Hadoop's ViewFs over the local folders): the URI route (spark_uris.py:
   Spark's file sources read the input, the part files come back to the driver);
4. `migrainefhir export --engine spark --spark-master MASTER` in a subprocess: everything a
   one-off command pays, JVM start included.

Checks that every Spark output is byte-identical to the local engine's, and prints a Markdown
table (resources/s counts the resources written).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import SIZES, make_input  # bench/run.py, beside this file

PYTHON = sys.executable
TIMESTAMP = "2026-07-01T00:00:00Z"


def digest(folder: Path, named: tuple[str, str] = ("", "")) -> str:
    """One hash of every file's path and bytes; `named` (old, new) renames the input in the
    output's Sources (a URI input names the same file otherwise). Hadoop's `.crc` checksum
    files beside what it wrote to a local disk are left out."""
    total = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.endswith(".crc"):
            data = path.read_bytes().replace(named[0].encode(), named[1].encode())
            total.update(str(path.relative_to(folder)).encode() + b"\0" + data)
    return total.hexdigest()


def resources(folder: Path) -> int:
    summary = json.loads((folder / "summary.json").read_text())
    return int(sum(summary["resources"].values()))


def timed_command(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark.py", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", choices=sorted(SIZES))
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--jobs", type=int, default=2, help="the local engine's --jobs")
    parser.add_argument("--validation", default="fast", choices=["fast", "full"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/migrainefhir-bench"))
    args = parser.parse_args(argv)

    from migrainefhir.export import spark as spark_module
    from migrainefhir.export.job import Engine, export
    from migrainefhir.export.options import ExportOptions
    from migrainefhir.export.spark import export_on_spark, start_session
    from migrainefhir.pipeline import InputOptions

    data = make_input(args.work, SIZES[args.size])
    out = args.work / "spark-bench"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    common = [str(data), "-q", "--validation", args.validation, "--timestamp", TIMESTAMP]
    common += ["--source-system", "https://example.org/migrainefhir/source"]  # export needs one
    command = [PYTHON, "-m", "migrainefhir", "export", *common]
    rows: list[tuple[str, float, int | None]] = []

    local = timed_command([*command, "--out", str(out / "local"), "--jobs", str(args.jobs)])
    expected, count = digest(out / "local"), resources(out / "local")
    rows.append((f"local engine, --jobs {args.jobs} (command)", local, count))

    started = time.perf_counter()
    # viewfs://bench/in and viewfs://bench/out: Hadoop mount points over the local folders, a
    # file system only Spark reaches (as hdfs:// or s3a://), for the URI route (spark_uris.py)
    mounts = {
        "spark.hadoop.fs.viewfs.mounttable.bench.link./in": data.parent.as_uri(),
        "spark.hadoop.fs.viewfs.mounttable.bench.link./out": out.as_uri(),
    }
    spark = start_session(args.master, mounts)
    rows.append(
        (f"Spark {args.master}: session start (JVM, context)", time.perf_counter() - started, None)
    )
    options = ExportOptions(
        out=out / "spark",
        export_time=datetime(2026, 7, 1, tzinfo=UTC),
        validation=args.validation,
        jobs=spark.sparkContext.defaultParallelism,
        engine="spark",
    )
    same: list[bool] = []
    job_seconds: list[float] = []

    def timed_run(*given: Any) -> Any:  # the Spark job alone, without the driver's merge
        started = time.perf_counter()
        finished = spark_module._run_on_spark(spark, *given)
        first = next(finished, None)  # the whole job runs before the first shard is handed on
        job_seconds.append(time.perf_counter() - started)
        if first is not None:
            yield first
            yield from finished

    for label in ("first export (starts the Python workers)", "second export, same session"):
        started = time.perf_counter()
        # export_on_spark's own call, with the Spark job timed apart
        export([str(data)], InputOptions(), options, engine=Engine(run=timed_run))
        seconds = time.perf_counter() - started
        rows.append((f"Spark {args.master}: {label}", seconds, count))
        rows.append(("... of which the Spark job (tasks)", job_seconds[-1], None))
        same.append(digest(out / "spark") == expected)

    uri_input = f"viewfs://bench/in/{data.name}"
    started = time.perf_counter()
    export_on_spark(
        spark,
        [uri_input],
        InputOptions(),
        replace(options, out=out / "unused", out_uri="viewfs://bench/out/spark-uri"),
    )
    rows.append(
        (
            f"Spark {args.master}: viewfs:// input and --out (URI route)",
            time.perf_counter() - started,
            count,
        )
    )
    same.append(digest(out / "spark-uri", (str(data), uri_input)) == expected)
    spark.stop()

    spark_cli = timed_command(
        [
            *command,
            "--out",
            str(out / "spark-cli"),
            "--engine",
            "spark",
            "--spark-master",
            args.master,
        ]
    )
    rows.append(
        (f"Spark {args.master}: `--engine spark` (command, all included)", spark_cli, count)
    )
    same.append(digest(out / "spark-cli") == expected)

    load = os.getloadavg()[0]
    print(
        f"{args.size} diary entries, {count} resources, --validation {args.validation}, "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )
    print("\n| run | seconds | resources/s |\n|---|---:|---:|")
    for label, seconds, written in rows:
        rate = f"{written / seconds:,.0f}" if written else ""
        print(f"| {label} | {seconds:.1f} | {rate} |")
    print(f"\nevery Spark output byte-identical to the local engine's: {all(same)}")
    shutil.rmtree(out, ignore_errors=True)
    return 0 if all(same) else 1


if __name__ == "__main__":
    raise SystemExit(main())
