"""Crash safety of every command that writes (export, convert -o): a full disk fails cleanly.

The disk is simulated full by wrapping every file the tool opens for writing (os.fdopen, which
output.open_private uses) so that writing fails with ENOSPC once a byte budget is spent: at
the first byte and part-way through the run. Each time the command must exit 3 with a clear
message on standard error, leave the previous output byte-for-byte as it was, and leave no
staging or partial file behind. The failing runs are separate processes (as a nightly job is):
with --jobs 2 the forked workers inherit the full disk, each with its own budget.
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.export import worker
from tests.cli_args import with_source_system

REPO = Path(__file__).parent.parent
EXAMPLES = REPO / "examples" / "ndjson"
SESSIONS = EXAMPLES / "ketamine-sessions.ndjson"  # enough for one Bundle of review size
TIMESTAMP = "2026-07-01T00:00:00Z"
LATER = "2026-08-01T00:00:00Z"  # another export time: a run that got through changes every file


class FullDisk:
    """Files whose writes fail with ENOSPC once `budget` bytes in total have been written."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.written = 0
        self.failures = 0
        self._fdopen = os.fdopen

    def fdopen(self, fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = self._fdopen(fd, mode, *args, **kwargs)
        return _Filling(handle, self) if "w" in mode or "a" in mode else handle


class _Filling:
    """A file object proxy that spends the disk's budget."""

    def __init__(self, handle: Any, disk: FullDisk) -> None:
        self._handle = handle
        self._disk = disk

    def write(self, data: bytes) -> int:
        room = self._disk.budget - self._disk.written
        if len(data) > room:
            if room > 0:
                self._handle.write(data[:room])
                self._disk.written += room
            self._disk.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.written += len(data)
        return int(self._handle.write(data))

    def __enter__(self) -> _Filling:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


_ON_A_FULL_DISK = """
import os, sys
from tests.test_crash_safety import FullDisk
disk = FullDisk(int(sys.argv[1]))
os.fdopen = disk.fdopen
from migrainefhir.cli import cli
try:
    cli(sys.argv[2:])
finally:
    sys.stderr.write(f"\\nFULL-DISK-FAILURES {disk.failures}\\n")
"""


def run_on_a_full_disk(budget: int, *args: str) -> tuple[int, str, int]:
    """The CLI in its own process with a full disk: (exit code, stderr, failed writes there)."""
    done = subprocess.run(
        [sys.executable, "-c", _ON_A_FULL_DISK, str(budget), *with_source_system(args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    failures = int(done.stderr.rsplit("FULL-DISK-FAILURES ", 1)[1].split()[0])
    return done.returncode, done.stderr, failures


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, with_source_system(args))


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under a folder (or the file itself): its mode and bytes."""
    paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): (p.stat().st_mode, p.read_bytes()) for p in paths}


def strays(parent: Path) -> list[str]:
    """Staging folders, previous outputs and partial files a failed run could leave."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@cache
def reference_export(options: tuple[str, ...], folder: str) -> tuple[Path, int]:
    """A finished export with these options (made once) and its size in bytes."""
    out = Path(folder) / ("-".join(options) or "default")
    result = run("export", str(EXAMPLES), "--out", str(out), "--timestamp", TIMESTAMP, *options)
    assert result.exit_code == 0, result.output
    return out, sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("references"))


FORMATS = [
    ("--format", "ndjson"),
    ("--format", "ndjson", "--gzip"),
    ("--format", "transaction"),
    ("--format", "collection"),
]


FULL_DISK_CASES = [
    pytest.param(options, share, jobs, id=f"{'-'.join(options[1:])}-{share}-jobs{jobs}")
    for options in FORMATS
    for share, jobs in [(0.0, "1"), (0.5, "1"), (0.99, "1"), (0.5, "2")]
]


@pytest.mark.parametrize(("options", "share", "jobs"), FULL_DISK_CASES)
def test_export_on_a_full_disk_exits_3_and_keeps_the_previous_output(
    tmp_path: Path, references: str, options: tuple[str, ...], share: float, jobs: str
) -> None:
    reference, size = reference_export(options, references)
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    before = snapshot(out)

    code, stderr, failures = run_on_a_full_disk(
        int(size * share),
        "export", str(EXAMPLES), "--out", str(out), "--timestamp", LATER, "--jobs", jobs,
        *options,
    )  # fmt: skip

    assert failures >= 1 or jobs != "1"  # workers count their own failures
    assert code == 3, stderr
    assert "migrainefhir: error: cannot write output" in stderr
    assert "No space left on device" in stderr
    assert "Traceback" not in stderr
    assert snapshot(out) == before
    assert strays(tmp_path) == []


def test_export_on_a_full_disk_without_previous_output_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stderr, _ = run_on_a_full_disk(4096, "export", str(EXAMPLES), "--out", str(out))
    assert code == 3, stderr
    assert sorted(tmp_path.iterdir()) == []


def previous_export(folder: Path) -> tuple[Path, dict[str, tuple[int, bytes]]]:
    """An export in `folder`/out that a failing run must leave as it is, and its snapshot."""
    out = folder / "out"
    run("export", str(EXAMPLES), "--out", str(out), "--timestamp", TIMESTAMP, "-j", "1")
    return out, snapshot(out)


def test_export_that_cannot_create_its_staging_folder_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, before = previous_export(tmp_path)
    real_mkdir = Path.mkdir

    def full_mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name.startswith(".out.staging"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", full_mkdir)
    result = run("export", str(EXAMPLES), "--out", str(out), "--timestamp", LATER, "-j", "1")
    monkeypatch.undo()
    assert result.exit_code == 3
    assert "No space left on device" in result.output
    assert snapshot(out) == before
    assert strays(tmp_path) == []


def test_export_whose_worker_is_killed_exits_3_and_keeps_the_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, before = previous_export(tmp_path)
    run_shard = worker.ShardWorker.run

    def killed_on_the_second_shard(worker: Any, shard: Any) -> Any:
        if shard.number == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        return run_shard(worker, shard)

    monkeypatch.setattr(worker.ShardWorker, "run", killed_on_the_second_shard)
    result = run("export", str(EXAMPLES), "--out", str(out), "--timestamp", LATER, "-j", "2")
    assert result.exit_code == 3, result.output
    assert "migrainefhir: error: a worker process was killed by SIGKILL" in result.output
    assert snapshot(out) == before
    assert strays(tmp_path) == []


@pytest.mark.parametrize("share", [0.0, 0.5, 0.99])
def test_convert_to_a_file_on_a_full_disk_exits_3_and_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: float
) -> None:
    bundle = tmp_path / "bundle.json"
    first = run("convert", str(SESSIONS), "-o", str(bundle), "--timestamp", TIMESTAMP)
    assert first.exit_code == 0
    before = snapshot(bundle)

    disk = FullDisk(int(bundle.stat().st_size * share))
    monkeypatch.setattr(os, "fdopen", disk.fdopen)
    result = run("convert", str(SESSIONS), "-o", str(bundle), "--timestamp", LATER)
    monkeypatch.undo()

    assert disk.failures == 1
    assert result.exit_code == 3, result.output
    assert f"migrainefhir: error: cannot write {bundle}" in result.output
    assert "No space left on device" in result.output
    assert snapshot(bundle) == before
    assert strays(tmp_path) == []


def test_a_run_after_the_disk_is_freed_writes_the_same_output_as_a_clean_run(
    tmp_path: Path,
) -> None:
    """The failed run left nothing that blocks or pollutes the next one."""
    out = tmp_path / "out"
    code, _, _ = run_on_a_full_disk(
        10_000, "export", str(EXAMPLES), "--out", str(out), "--timestamp", TIMESTAMP
    )
    assert code == 3
    assert run("export", str(EXAMPLES), "--out", str(out), "--timestamp", TIMESTAMP).exit_code == 0
    clean = tmp_path / "clean" / "out"
    run("export", str(EXAMPLES), "--out", str(clean), "--timestamp", TIMESTAMP)
    assert snapshot(out) == snapshot(clean)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_export_that_fails_closes_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    unclosed: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unclosed.append)
    monkeypatch.setattr(os, "fdopen", FullDisk(20_000).fdopen)
    result = run(
        "export", str(EXAMPLES), "--out", str(tmp_path / "out"), "--timestamp", TIMESTAMP,
        "--jobs", jobs,
    )  # fmt: skip
    assert result.exit_code == 3
    del result  # its exc_info keeps the failed run's frames (and their files) alive
    gc.collect()
    assert [u.exc_value for u in unclosed if isinstance(u.exc_value, ResourceWarning)] == []
