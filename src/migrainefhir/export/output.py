"""Safe output: private files, written into a staging folder that replaces the target at the end.

The output holds health data, so every folder is created 0700 and every file 0600, whatever
the umask. A run writes into a staging folder beside the target and swaps it in only when
everything is written: a run that is killed or fails leaves the previous output untouched,
and never a half-written file under the target's name.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from migrainefhir.errors import OutputUnwritable
from migrainefhir.export.target import (
    MARKER,
    PRIVATE_DIR,
    PRIVATE_FILE,
    STAGING_MARKER,
    WRITTEN_LATER,
    check_replaceable,
    check_swappable,
    is_empty,
    listed,
    lock_is_held,
    lock_path,
    make_private_parents,
    marker_bytes,
    output_lock,
    remove_free_lock,
)

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "open_private", "staged_directory", "write_private"]


def open_private(path: Path, compress: bool = False, buffer_size: int = -1) -> IO[bytes]:
    """Open a new file for binary writing, readable by the owner only (`buffer_size` -1: the
    default buffer)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    raw = os.fdopen(fd, "wb", buffering=buffer_size)
    if compress:
        return _ClosingGzip(raw)  # type: ignore[return-value]
    return raw


class _ClosingGzip(gzip.GzipFile):
    """A gzip writer that also closes the file under it (GzipFile leaves a given fileobj open).

    No file name and mtime 0 in the header keep the output byte-identical across runs.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(filename="", mode="wb", fileobj=raw, mtime=0)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def write_private(path: Path, data: bytes) -> None:
    with open_private(path) as handle:
        handle.write(data)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write one private file so that readers see the old file or the new one, never half.

    Raises OutputUnwritable (disk full, permissions); the previous file is then intact.
    """
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        write_private(temporary, data)
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputUnwritable(f"cannot write {path}: {exc.strerror}") from exc
    except BaseException:  # a signal (cli.py): no partial file is left either
        temporary.unlink(missing_ok=True)
        raise


def _staging_name(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>staging|previous|probe|probed)-(?P<pid>[0-9]+)$")


def _dead_runs(
    folder: Path, kind: str, name: str | None = None, own: str | None = None
) -> list[Path]:
    """`.NAME.KIND-PID` folders in `folder` (of any NAME, or only `name`) whose run is gone:
    its process is gone and, unless NAME is `own` (whose lock this process holds), nobody
    holds NAME's lock (a pid alone can mislead: pids are reused, and a run in another pid
    namespace sharing the folder looks dead)."""
    found = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    for path in entries:
        match = _LEFTOVER.match(path.name)
        if match is None or match["kind"] != kind or (name is not None and match["name"] != name):
            continue
        if path.is_symlink() or not path.is_dir() or _pid_alive(int(match["pid"])):
            continue
        if match["name"] != own and lock_is_held(lock_path(folder / match["name"])):
            continue
        found.append(path)
    return found


def _is_staging(path: Path) -> bool:
    """A staging folder of ours: it holds the staging marker, or nothing at all (killed before
    the marker was written)."""
    try:
        return (path / STAGING_MARKER).is_file() or is_empty(path)
    except OSError:
        return False


def remove_export(folder: Path) -> list[str]:
    """Delete a previous export: only the files and folders its marker lists, the marker last.

    Returns what is left (unlisted entries, which are never deleted); [] when the folder is
    gone. A folder without a valid marker is left as it is.
    """
    found = listed(folder)
    if found is None:
        try:
            folder.rmdir()  # an empty folder (the target was empty before the run)
        except OSError:
            return sorted(p.name for p in folder.iterdir())
        return []
    files, folders = found
    for relative in [*files, *WRITTEN_LATER]:
        path = folder / relative
        if _below_without_links(folder, relative) and (path.is_symlink() or path.is_file()):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a symlink itself, never what it points to
    for relative in sorted(folders, key=lambda p: p.count("/"), reverse=True):
        if _below_without_links(folder, relative) and not (folder / relative).is_symlink():
            with contextlib.suppress(OSError):
                (folder / relative).rmdir()  # only when empty: nothing unlisted goes
    left = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != MARKER]
    if left:
        return sorted(left)
    with contextlib.suppress(FileNotFoundError):
        (folder / MARKER).unlink()
    try:
        folder.rmdir()
    except OSError:
        return sorted(p.name for p in folder.iterdir())
    return []


@dataclass
class Cleaned:
    """What a clean-up found: removed, put back in place, or left (with the reason)."""

    removed: list[Path] = field(default_factory=list)
    restored: list[Path] = field(default_factory=list)
    left: list[tuple[Path, str]] = field(default_factory=list)


def _below_without_links(folder: Path, relative: str) -> bool:
    """True when no folder between `folder` and `relative` is a symbolic link (so removing
    `folder / relative` cannot reach outside `folder`)."""
    path = folder
    for part in Path(relative).parts[:-1]:
        path = path / part
        if path.is_symlink():
            return False
    return True


def clean_leftovers(parent: Path, only: str | None = None) -> Cleaned:
    """Clean up in `parent` after exports that were killed (their process is gone).

        Their staging folders are removed, whatever their output folder's name. A swap killed
        between its two renames left `.NAME.previous-PID`: when NAME is missing, the previous
        output is put back; when NAME is there, the previous output's own files (those its marker
        lists) are removed. `only`: handle only the previous output of this NAME (an export
        handles its own; `clean` handles all). An empty `.NAME.lock` no running export holds (a
    killed run's) is removed.
        Nothing else is ever touched: a folder named like staging that holds what the tool did not
        write is left, and reported.
    """
    cleaned = Cleaned()
    for kind in ("probe", "probed"):  # check_swappable's empty folder, if killed right then
        for probe in _dead_runs(parent, kind, own=only):
            with contextlib.suppress(OSError):
                probe.rmdir()  # only when empty
                cleaned.removed.append(probe)
    for staging in _dead_runs(parent, "staging", own=only):
        if not _is_staging(staging):
            cleaned.left.append((staging, "not a staging folder of migrainefhir"))
            continue
        shutil.rmtree(staging, ignore_errors=True)
        if staging.exists():
            cleaned.left.append((staging, "could not be removed"))
        else:
            cleaned.removed.append(staging)
    for previous in _dead_runs(parent, "previous", only, own=only):
        match = _LEFTOVER.match(previous.name)
        assert match is not None
        target = parent / match["name"]
        if target.exists() or target.is_symlink():
            left = remove_export(previous)
            if left:
                cleaned.left.append(
                    (previous, f"holds files it did not write: {', '.join(left[:3])}")
                )
            else:
                cleaned.removed.append(previous)
        else:
            previous.rename(target)
            cleaned.restored.append(target)
    for lock in sorted(parent.glob(".*.lock")):
        ours = lock.is_file() and not lock.is_symlink() and lock.stat().st_size == 0
        if ours and remove_free_lock(lock):  # never one a running export holds
            cleaned.removed.append(lock)
    return cleaned


def recover_interrupted_swap(target: Path) -> None:
    """Clean up beside `target` after runs that were killed (clean_leftovers)."""
    clean_leftovers(target.parent, target.name)


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield a private staging folder; on success it replaces `target`, on failure it vanishes.

    `target` must be missing, empty or a previous export holding only what its marker lists
    (else UsageError); only one run at a time writes it (else OutputBusy). Raises
    OutputUnwritable when the staging folder cannot be created or swapped in (disk full,
    permissions, a mount point); the previous output is then intact. The finished folder
    holds the marker (target.MARKER) that lists everything in it.
    """
    if target.is_symlink():
        check_replaceable(target)  # refuses it
    target = target.resolve()
    make_private_parents(target)
    with output_lock(target):
        try:
            recover_interrupted_swap(target)
        except OSError as exc:
            raise OutputUnwritable(f"cannot clean up beside {target}: {exc.strerror}") from exc
        check_replaceable(target)
        check_swappable(target)
        staging = _staging_name(target, "staging")
        try:
            if staging.exists():
                shutil.rmtree(staging)
            staging.mkdir(mode=PRIVATE_DIR)
            os.chmod(staging, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
            write_private(staging / STAGING_MARKER, b"")
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise OutputUnwritable(f"cannot create output beside {target}: {exc.strerror}") from exc
        try:
            yield staging
            (staging / STAGING_MARKER).unlink()
            write_private(staging / MARKER, marker_bytes(staging))
            check_replaceable(target)  # nothing was put into it while we worked
            _swap_in(staging, target)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise OutputUnwritable(f"cannot write output to {target}: {exc.strerror}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _swap_in(staging: Path, target: Path) -> None:
    """Replace target by staging: rename the old one aside, rename the new one in, remove the
    old one's files (only those its marker lists).

    A kill between the two renames leaves `.NAME.previous-PID`, which the next run restores
    (recover_interrupted_swap) before it starts.
    """
    previous = _staging_name(target, "previous")
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    if previous.exists():
        remove_export(previous)
