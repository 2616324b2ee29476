"""The fault harness (issue 25): the real command line killed at random points, every way.

Each trial runs `migrainefhir export --jobs 2` as its own process on a generated input large
enough to take several seconds, over a previous export, and at a random point after its
workers have started sends SIGKILL, SIGTERM or SIGINT to the parent or to one worker. Then:

- the previous output is byte-for-byte (and mode-for-mode) what it was;
- no process of the run is left (the parent's workers are gone within 3 s);
- no staging folder, lock or partial file is left beside --out after SIGTERM and SIGINT, or
  after a worker was killed (the parent cleans up); after a SIGKILL of the parent, the next
  export beside it removes them;
- the exit code is the documented one: 143 for SIGTERM, 130 for SIGINT, 3 for a killed worker
  (the export fails, "a worker process was killed by ..."); SIGINT sent to a worker alone is
  ignored (Ctrl-C reaches the whole process group and the parent handles it), so that trial
  then stops the parent with SIGTERM.

The points are drawn from a seeded generator (SEED), so a failure can be replayed. The
trials here take about half a minute; `python bench/faults.py --trials 60` runs many more.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_args import with_source_system
from tests.process_helpers import alive, children_of, wait_for_children, wait_until_gone
from tests.test_export_crash import write_input

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--timestamp", "2026-07-01T00:00:00Z", "--quiet"]
SEED = 25
ENTRIES = 20_000  # diary entries of the input killed mid-way (many seconds of work)
LATEST_KILL = 1.5  # seconds after the workers started


def command(source: Path, out: Path, jobs: str = "2") -> list[str]:
    export = ["export", str(source), "--out", str(out), "--jobs", jobs, *ARGS]
    return [sys.executable, "-m", "migrainefhir", *with_source_system(export)]


ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in sorted(folder.rglob("*"))
    }


@dataclass(frozen=True)
class Fault:
    victim: str  # "parent" or "worker"
    signum: int
    delay: float  # seconds after both workers started

    def __str__(self) -> str:
        return f"{signal.Signals(self.signum).name} to the {self.victim} after {self.delay:.2f} s"

    @property
    def exit_code(self) -> int:
        """The documented exit code of the export."""
        if self.victim == "worker":
            return 143 if self.signum == signal.SIGINT else 3
        return {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}[
            self.signum
        ]


def faults(seed: int, rounds: int = 1) -> list[Fault]:
    """Every victim and signal, `rounds` times, each at a random point."""
    rng = random.Random(seed)
    return [
        Fault(victim, signum, round(rng.uniform(0.0, LATEST_KILL), 2))
        for _ in range(rounds)
        for victim in ("parent", "worker")
        for signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
    ]


def run_trial(fault: Fault, folder: Path, large: Path, small: Path, previous: Path) -> None:
    """One export killed as `fault` says, over a copy of `previous`; asserts every guarantee."""
    out = folder / "out"
    shutil.copytree(previous, out, copy_function=shutil.copy2)
    before = snapshot(out)
    process = subprocess.Popen(
        command(large, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    try:
        workers = wait_for_children(process.pid, 2, 60)
        assert len(workers) == 2, f"{fault}: the workers did not start"
        time.sleep(fault.delay)
        assert process.poll() is None, f"{fault}: the export ended before the fault"
        victim = process.pid if fault.victim == "parent" else min(workers)
        os.kill(victim, fault.signum)
        if fault.victim == "worker" and fault.signum == signal.SIGINT:
            time.sleep(0.5)
            assert alive(victim), f"{fault}: a worker must leave Ctrl-C to the parent"
            os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    message = stderr.decode(errors="replace")
    assert process.returncode == fault.exit_code, f"{fault}: {message}"
    assert "Traceback" not in message, f"{fault}: {message}"
    if fault.exit_code == 3:
        assert "migrainefhir: error: a worker process was killed by" in message, message
    assert wait_until_gone(workers, 3) == set(), f"{fault}: workers left running"
    assert children_of(process.pid) == set()
    assert snapshot(out) == before, f"{fault}: the previous output changed"
    left = sorted(p.name for p in folder.iterdir() if p.name != "out")
    if fault.victim == "parent" and fault.signum == signal.SIGKILL:
        assert f".out.staging-{process.pid}" in left  # nobody could clean up, until:
        nxt = subprocess.run(command(small, folder / "next", "1"), env=ENV, capture_output=True)
        assert nxt.returncode == 0, nxt.stderr
        shutil.rmtree(folder / "next")
        left = sorted(p.name for p in folder.iterdir() if p.name != "out")
    assert left == [], f"{fault}: left behind: {left}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("faults")
    large, small = folder / "large.ndjson", folder / "small.ndjson"
    write_input(large, ENTRIES)
    write_input(small, 5)
    previous = folder / "previous"
    subprocess.run(command(small, previous, "1"), env=ENV, check=True)
    return large, small, previous


@pytest.mark.parametrize("fault", faults(SEED), ids=str)
def test_a_fault_keeps_the_previous_output_and_leaves_nothing(
    fault: Fault, setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    large, small, previous = setup
    run_trial(fault, tmp_path, large, small, previous)
