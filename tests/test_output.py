"""Safe output: private files, staged folders that replace the target only on success, and
only a target that is the tool's own (empty, or a previous export listing all it holds)."""

import fcntl
import json
import os
import stat
from pathlib import Path

import pytest

from migrainefhir.errors import OutputBusy, OutputUnwritable, UsageError
from migrainefhir.export.output import (
    clean_leftovers,
    open_private,
    recover_interrupted_swap,
    staged_directory,
)
from migrainefhir.export.target import MARKER, check_swappable, lock_path

DEAD_PID = 2**22 + 1  # above Linux's pid_max default, so no such process


def previous_export(target: Path, files: dict[str, str]) -> None:
    """A folder as a previous export left it: its files and the marker that lists them."""
    with staged_directory(target) as staging:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_success_replaces_the_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "out"
    previous_export(target, {"old.txt": "old", "sub/old.txt": "old"})
    with staged_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_marker_lists_every_file_and_folder_the_export_wrote(tmp_path: Path) -> None:
    target = tmp_path / "out"
    previous_export(target, {"a.ndjson": "a", "bundles/b.json": "b"})
    marker = json.loads((target / MARKER).read_text())
    assert marker["format"] == "migrainefhir-export"
    assert marker["version"] == 1
    assert marker["files"] == ["a.ndjson", "bundles/b.json"]
    assert marker["folders"] == ["bundles"]


def test_an_empty_folder_may_be_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with staged_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_holding_anything_else_is_refused_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "thesis.docx").write_bytes(b"years of work")
    refused = pytest.raises(UsageError, match="not empty and not a previous migrainefhir export")
    with refused, staged_directory(target):
        pytest.fail("the run must not start")
    assert (target / "thesis.docx").read_bytes() == b"years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_previous_export_with_a_file_it_did_not_write_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    previous_export(target, {"old.txt": "old"})
    (target / "notes.txt").write_text("mine")
    refused = pytest.raises(UsageError, match=r"holds files it did not write \(notes.txt\)")
    with refused, staged_directory(target):
        pytest.fail("the run must not start")
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "old.txt").read_text() == "old"


def test_a_marker_naming_paths_outside_its_folder_is_no_marker(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (tmp_path / "victim.txt").write_text("keep")
    marker = {
        "format": "migrainefhir-export",
        "version": 1,
        "folders": [],
        "files": ["../victim.txt"],
    }
    (target / MARKER).write_text(json.dumps(marker))
    with pytest.raises(UsageError), staged_directory(target):
        pytest.fail("the run must not start")
    assert (tmp_path / "victim.txt").read_text() == "keep"


def test_a_symlink_target_is_refused_and_what_it_points_to_kept(tmp_path: Path) -> None:
    real = tmp_path / "real"
    previous_export(real, {"old.txt": "old"})
    link = tmp_path / "out"
    link.symlink_to(real)
    with pytest.raises(UsageError, match="symbolic link"), staged_directory(link):
        pytest.fail("the run must not start")
    assert link.is_symlink()
    assert (real / "old.txt").read_text() == "old"


def test_a_second_run_on_the_same_target_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out"
    busy = pytest.raises(OutputBusy, match="another export is writing to")
    with staged_directory(target), busy, staged_directory(target):
        pytest.fail("the second run must not start")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the lock file went too


def test_a_lock_held_by_another_process_refuses_the_run(tmp_path: Path) -> None:
    target = tmp_path / "out"
    fd = os.open(lock_path(target), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # flock locks of two open files conflict even in one process
    try:
        with pytest.raises(OutputBusy), staged_directory(target):
            pytest.fail("the run must not start")
    finally:
        os.close(fd)
    with staged_directory(target):  # released: the next run goes ahead
        pass


def test_a_mount_point_is_refused_before_the_work(tmp_path: Path) -> None:
    with pytest.raises(OutputUnwritable, match="is a mount point"):
        check_swappable(Path("/proc"))


def test_a_parent_where_folders_cannot_be_created_fails_before_the_work(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may write into a read-only folder")
    parent = tmp_path / "locked"
    parent.mkdir()
    target = parent / "out"
    target.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(OutputUnwritable), staged_directory(target):
            pytest.fail("the run must not start")
    finally:
        parent.chmod(0o700)


def test_failure_leaves_the_previous_output_intact(tmp_path: Path) -> None:
    target = tmp_path / "out"
    previous_export(target, {"old.txt": "old"})
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
    assert mode(tmp_path / "out" / MARKER) == 0o600


def test_the_folders_it_creates_above_the_target_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    old_umask = os.umask(0)
    try:
        with staged_directory(tmp_path / "a" / "b" / "c") as staging:
            assert mode(staging) == 0o700
    finally:
        os.umask(old_umask)
    assert mode(tmp_path / "a") == 0o700
    assert mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "c") == 0o700


def test_a_write_error_becomes_output_unwritable(tmp_path: Path) -> None:
    target = tmp_path / "out"
    previous_export(target, {"old.txt": "old"})
    with pytest.raises(OutputUnwritable), staged_directory(target):
        raise OSError(28, "No space left on device")
    assert (target / "old.txt").read_text() == "old"


def test_a_swap_killed_between_renames_is_undone_by_the_next_run(tmp_path: Path) -> None:
    # A dead process's "previous" folder and no target: the old output goes back in place.
    previous = tmp_path / f".out.previous-{DEAD_PID}"
    previous.mkdir()
    (previous / "old.txt").write_text("old")
    stale_staging = tmp_path / f".out.staging-{DEAD_PID}"
    stale_staging.mkdir()
    recover_interrupted_swap(tmp_path / "out")
    assert (tmp_path / "out" / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def killed_staging(parent: Path, name: str, pid: int = DEAD_PID) -> Path:
    """A staging folder as a run killed mid-way leaves it."""
    staging = parent / f".{name}.staging-{pid}"
    staging.mkdir()
    (staging / ".migrainefhir-staging").write_bytes(b"")
    (staging / "Patient.ndjson").write_text("health data")
    return staging


def test_a_run_removes_killed_runs_staging_beside_it_for_any_output_name(tmp_path: Path) -> None:
    killed_staging(tmp_path, "other")
    killed_staging(tmp_path, "out")
    with staged_directory(tmp_path / "out"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staging_of_a_live_run_and_folders_that_only_look_like_staging_are_kept(
    tmp_path: Path,
) -> None:
    live = killed_staging(tmp_path, "busy", os.getpid())
    lookalike = tmp_path / f".mine.staging-{DEAD_PID}"
    lookalike.mkdir()
    (lookalike / "thesis.docx").write_text("not the tool's")
    cleaned = clean_leftovers(tmp_path)
    assert cleaned.removed == []
    assert cleaned.left == [(lookalike, "not a staging folder of migrainefhir")]
    assert live.exists()
    assert (lookalike / "thesis.docx").read_text() == "not the tool's"


def test_replacing_a_previous_export_deletes_only_what_its_marker_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file put into the previous export after the last check (a race) is never deleted."""
    target = tmp_path / "out"
    previous_export(target, {"old.txt": "old"})
    from migrainefhir.export import output

    real_swap = output._swap_in

    def racing_swap(staging: Path, target: Path) -> None:
        (target / "late.txt").write_text("written during the swap")
        real_swap(staging, target)

    monkeypatch.setattr(output, "_swap_in", racing_swap)
    with staged_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.previous-")]
    assert len(left) == 1
    assert sorted(p.name for p in left[0].iterdir()) == [MARKER, "late.txt"]


def test_staging_whose_output_lock_is_held_is_kept_even_if_its_pid_looks_dead(
    tmp_path: Path,
) -> None:
    """A run in another pid namespace (a container sharing the folder) looks dead by its pid;
    its lock says it is running."""
    staging = killed_staging(tmp_path, "busy")
    fd = os.open(lock_path(tmp_path / "busy"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert clean_leftovers(tmp_path).removed == []
    finally:
        os.close(fd)
    assert staging.exists()
    assert clean_leftovers(tmp_path).removed == [staging, lock_path(tmp_path / "busy")]


def test_removing_a_previous_export_never_follows_a_folder_link(tmp_path: Path) -> None:
    """A killed swap's previous output whose listed folder became a link elsewhere: the files
    behind the link are kept."""
    previous = tmp_path / f".out.previous-{DEAD_PID}"
    previous_export(previous, {"bundles/a.json": "a"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.json").write_text("not the export's")
    (previous / "bundles" / "a.json").unlink()
    (previous / "bundles").rmdir()
    (previous / "bundles").symlink_to(elsewhere)
    (tmp_path / "out").mkdir()  # the swap got through: the previous output is to be removed
    clean_leftovers(tmp_path)
    assert (elsewhere / "a.json").read_text() == "not the export's"


def test_a_swap_probe_left_by_a_killed_run_is_removed_when_empty(tmp_path: Path) -> None:
    probe = tmp_path / f".out.probe-{DEAD_PID}"
    probe.mkdir()
    assert clean_leftovers(tmp_path).removed == [probe]


def test_a_push_journal_in_a_previous_export_is_the_tools_own(tmp_path: Path) -> None:
    """`push DIR` writes DIR/push-journal.ndjson after the export: still a previous export."""
    target = tmp_path / "out"
    previous_export(target, {"old.txt": "old"})
    (target / "push-journal.ndjson").write_text("{}\n")
    with staged_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
