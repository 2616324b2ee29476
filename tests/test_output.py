"""Safe output: private files, staged folders that replace the target only on success."""

import os
import stat
from pathlib import Path

import pytest

from migrainefhir.errors import OutputUnwritable
from migrainefhir.export.output import open_private, recover_interrupted_swap, staged_directory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_success_replaces_the_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with staged_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_leaves_the_previous_output_intact(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_directory(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("killed midway")
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_folders_and_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        with staged_directory(tmp_path / "out") as staging, open_private(staging / "a") as f:
            f.write(b"x")
    finally:
        os.umask(old_umask)
    assert mode(tmp_path / "out") == 0o700
    assert mode(tmp_path / "out" / "a") == 0o600


def test_a_write_error_becomes_output_unwritable(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OutputUnwritable), staged_directory(target):
        raise OSError(28, "No space left on device")
    assert (target / "old.txt").read_text() == "old"


def test_a_swap_killed_between_renames_is_undone_by_the_next_run(tmp_path: Path) -> None:
    # A dead process's "previous" folder and no target: the old output goes back in place.
    dead_pid = 2**22 + 1  # above Linux's pid_max default, so no such process
    previous = tmp_path / f".out.previous-{dead_pid}"
    previous.mkdir()
    (previous / "old.txt").write_text("old")
    stale_staging = tmp_path / f".out.staging-{dead_pid}"
    stale_staging.mkdir()
    recover_interrupted_swap(tmp_path / "out")
    assert (tmp_path / "out" / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
