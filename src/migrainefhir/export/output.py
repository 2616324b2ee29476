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
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from migrainefhir.errors import OutputUnwritable

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


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


def _leftovers(target: Path, kind: str) -> list[Path]:
    """Staging or previous folders of runs that were killed (their process is gone)."""
    found = []
    for path in sorted(target.parent.glob(f".{target.name}.{kind}-*")):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            found.append(path)
    return found


def recover_interrupted_swap(target: Path) -> None:
    """Clean up after runs that were killed.

    Killed while writing: its staging folder is removed. Killed between the two renames of a
    swap: the target is missing and its previous output is put back.
    """
    for staging in _leftovers(target, "staging"):
        shutil.rmtree(staging, ignore_errors=True)
    for previous in _leftovers(target, "previous"):
        if target.exists():
            shutil.rmtree(previous, ignore_errors=True)
        else:
            previous.rename(target)


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield a private staging folder; on success it replaces `target`, on failure it vanishes.

    Raises OutputUnwritable when the staging folder cannot be created or swapped in (disk
    full, permissions); the previous output is then intact.
    """
    target = target.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover_interrupted_swap(target)
        staging = _staging_name(target, "staging")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=PRIVATE_DIR)
        os.chmod(staging, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise OutputUnwritable(f"cannot create output beside {target}: {exc.strerror}") from exc
    try:
        yield staging
        _swap_in(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputUnwritable(f"cannot write output to {target}: {exc.strerror}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, target: Path) -> None:
    """Replace target by staging: rename the old one aside, rename the new one in, drop the old.

    A kill between the two renames leaves `.NAME.previous-PID`, which the next run restores
    (recover_interrupted_swap) before it starts.
    """
    previous = _staging_name(target, "previous")
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    if previous.exists():
        shutil.rmtree(previous)
