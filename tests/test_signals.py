"""Signals, leftovers and odd targets, through the real command line (issue 25, items 2, 3, 7).

SIGTERM cleans up exactly as Ctrl-C does (exit 143 and 130), a SIGKILL leaves no worker behind
and its staging folder is removed by the next export beside it or by `migrainefhir clean`;
two exports to one --out: the second is refused; a full TMPDIR is named as such.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from tests.cli_args import with_source_system
from tests.process_helpers import children_of, wait_for_children, wait_until_gone
from tests.test_export_crash import write_input

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--timestamp", "2026-07-01T00:00:00Z", "--quiet"]
LARGE = 8000  # entries: an export of several seconds with --jobs 2


def every_file(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def start_export(source: Path, out: Path, *more: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "migrainefhir",
         *with_source_system(["export", str(source), "--out", str(out), *ARGS, *more])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip


def export(source: Path, out: Path, *more: str) -> subprocess.CompletedProcess[bytes]:
    process = start_export(source, out, *more)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    small, large = folder / "small.ndjson", folder / "large.ndjson"
    write_input(small, 5)
    write_input(large, LARGE)
    return small, large


@pytest.fixture
def previous(tmp_path: Path, inputs: tuple[Path, Path]) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "out"
    done = export(inputs[0], out, "--jobs", "1")
    assert done.returncode == 0, done.stderr
    return out, every_file(out)


def running_with_workers(source: Path, out: Path) -> tuple[subprocess.Popen[bytes], set[int]]:
    """An export with --jobs 2 that has started both its workers."""
    process = start_export(source, out, "--jobs", "2")
    workers = wait_for_children(process.pid, 2, 60)
    assert len(workers) == 2, "the workers did not start"
    time.sleep(0.3)  # let them work a little
    assert process.poll() is None, "the export finished before it could be stopped"
    return process, workers


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_cleans_up_and_exits_with_its_conventional_code(
    tmp_path: Path, inputs: tuple[Path, Path], previous: tuple[Path, Any], signum: int, code: int
) -> None:
    out, before = previous
    process, workers = running_with_workers(inputs[1], out)
    os.kill(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    name = signal.Signals(signum).name
    assert f"migrainefhir: stopped by {name}: nothing written" in stderr.decode()
    assert b"Traceback" not in stderr
    assert wait_until_gone(workers, 3) == set()
    assert every_file(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging, no lock file


def test_a_killed_export_leaves_no_worker_and_no_open_pipe(
    tmp_path: Path, inputs: tuple[Path, Path], previous: tuple[Path, Any]
) -> None:
    out, before = previous
    process, workers = running_with_workers(inputs[1], out)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert wait_until_gone(workers, 3) == set()
    ended = threading.Event()
    threading.Thread(target=lambda: (process.communicate(), ended.set()), daemon=True).start()
    assert ended.wait(3), "the export's stdout or stderr is still held open"
    assert every_file(out) == before
    staging = tmp_path / f".out.staging-{process.pid}"
    assert staging.is_dir()  # a SIGKILL cannot be cleaned up after ...

    # ... until the next export into any folder beside it
    done = export(inputs[0], tmp_path / "other", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "out"]


def test_clean_removes_a_killed_runs_staging_and_nothing_else(
    tmp_path: Path, inputs: tuple[Path, Path], previous: tuple[Path, Any]
) -> None:
    out, before = previous
    process, _ = running_with_workers(inputs[1], out)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    staging = tmp_path / f".out.staging-{process.pid}"
    assert staging.is_dir()
    mine = tmp_path / ".notes.staging-1234567"  # named like staging, but not the tool's
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")

    result = CliRunner().invoke(cli, ["clean", str(out)])

    assert result.exit_code == 0, result.output
    assert f"removed {staging}" in result.stdout
    assert f"migrainefhir: kept {mine}: not a staging folder of migrainefhir" in result.stderr
    assert not staging.exists()
    assert (mine / "notes.txt").read_text() == "mine"
    assert every_file(out) == before


def test_clean_with_nothing_to_do_says_so_and_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["clean", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout == "nothing to clean\n"


def test_clean_of_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert CliRunner().invoke(cli, ["clean", str(tmp_path / "f")]).exit_code == 2


def test_a_second_export_to_the_same_out_is_refused_while_the_first_runs(
    tmp_path: Path, inputs: tuple[Path, Path], previous: tuple[Path, Any]
) -> None:
    out, _ = previous
    first, _ = running_with_workers(inputs[1], out)
    try:
        second = export(inputs[0], out, "--jobs", "1")
    finally:
        os.kill(first.pid, signal.SIGTERM)
        first.communicate(timeout=60)
    assert second.returncode == 3, second.stderr
    assert b"migrainefhir: error: another export is writing to" in second.stderr
    assert first.returncode == 143


def test_a_lock_held_elsewhere_refuses_the_export_with_exit_3(tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    write_input(source, 2)
    fd = os.open(tmp_path / ".out.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = CliRunner().invoke(
            cli, with_source_system(["export", str(source), "--out", str(tmp_path / "out")])
        )
    finally:
        os.close(fd)
    assert result.exit_code == 3
    assert "another export is writing to" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_folders_export_creates_above_out_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.ndjson"
    write_input(source, 2)
    old = os.umask(0)
    try:
        out = tmp_path / "a" / "b" / "c"
        result = CliRunner().invoke(
            cli, with_source_system(["export", str(source), "--out", str(out), *ARGS])
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for folder in (tmp_path / "a", tmp_path / "a" / "b", out):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_missing_tmpdir_is_named_not_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.ndjson"
    write_input(source, 2)
    missing = tmp_path / "no-such-tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    result = CliRunner().invoke(
        cli,
        with_source_system(
            ["export", str(source), "--out", str(tmp_path / "out"), "--jobs", "1", *ARGS]
        ),
    )
    assert result.exit_code == 3
    assert f"cannot write a temporary file in {missing} (TMPDIR)" in result.stderr
    assert "cannot write output" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ndjson"]


def test_a_full_tmpdir_is_named_not_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.ndjson"
    write_input(source, 2)

    def full(*_args: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)  # only the temporary tables write with pwrite
    result = CliRunner().invoke(
        cli,
        with_source_system(
            ["export", str(source), "--out", str(tmp_path / "out"), "--jobs", "1", *ARGS]
        ),
    )
    assert result.exit_code == 3
    where = tempfile.gettempdir()
    assert f"cannot write a temporary file in {where} (TMPDIR): No space left on device" in (
        result.stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ndjson"]


def test_no_export_child_is_left_after_a_run(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    process = start_export(inputs[0], tmp_path / "out", "--jobs", "2")
    process.communicate(timeout=120)
    assert children_of(process.pid) == set()


def test_a_swap_that_cannot_work_fails_before_any_record_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a mount point or a parent folder that refuses renames: exit 3 at once."""
    from migrainefhir.export import worker

    source = tmp_path / "in.ndjson"
    write_input(source, 2)
    shards_run: list[object] = []
    monkeypatch.setattr(worker.ShardWorker, "run", lambda _self, shard: shards_run.append(shard))

    def refused(_self: Path, _target: Any) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    monkeypatch.setattr(Path, "rename", refused)
    result = CliRunner().invoke(
        cli,
        with_source_system(
            ["export", str(source), "--out", str(tmp_path / "out"), "--jobs", "1", *ARGS]
        ),
    )
    assert result.exit_code == 3
    assert f"cannot create and rename folders in {tmp_path}" in result.stderr
    assert "Device or resource busy" in result.stderr
    assert shards_run == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ndjson"]
