"""What `--out` may be, checked before any work: never replace what the tool did not write.

An export replaces its output folder as a whole (output.py), so the folder it replaces must be
the tool's own: empty, or a previous export. Every export writes a marker file
(`.migrainefhir-export`) listing every file and folder it wrote; a folder is a previous export
only when its marker is valid and it holds nothing the marker does not list. Anything else
(an unrelated file, an input, a folder an input lies in, a symlink) is refused with a usage
error (exit 2) before anything is read or written. When a previous export is replaced, only
the files its marker lists are deleted (output.remove_export).

Also here: the lock that keeps two exports from writing the same `--out` at once (a lock file
beside it, `fcntl.flock`, released by the kernel when the process dies), and the checks that
the final swap can work (a mount point cannot be renamed; the parent folder must let us create
and rename folders) made before the work starts, not after it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from migrainefhir.errors import OutputBusy, OutputUnwritable, UsageError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

# The file every export writes into its output folder; the format is versioned.
MARKER = ".migrainefhir-export"
MARKER_FORMAT = "migrainefhir-export"
MARKER_VERSION = 1
# Files other migrainefhir commands write into an export folder after the export: they are the
# tool's own too, so a folder holding them is still a previous export, and replacing it
# removes them (`push DIR` keeps its journal of accepted Bundles in DIR).
WRITTEN_LATER = frozenset({"push-journal.ndjson"})
# The file a staging folder holds from its creation on, so `clean` removes only the tool's own.
STAGING_MARKER = ".migrainefhir-staging"

STDIN = "-"


# --- the marker --------------------------------------------------------------------------


def marker_bytes(folder: Path) -> bytes:
    """The marker of a finished output folder: every file and folder in it, sorted."""
    files: list[str] = []
    folders: list[str] = []
    for root, dirs, names in os.walk(folder):
        base = Path(root).relative_to(folder)
        folders.extend((base / name).as_posix() for name in dirs)
        files.extend(
            (base / name).as_posix() for name in names if name != MARKER or root != str(folder)
        )
    document = {
        "format": MARKER_FORMAT,
        "version": MARKER_VERSION,
        "note": "written by migrainefhir export: the files it may replace in this folder",
        "folders": sorted(folders),
        "files": sorted(files),
    }
    return json.dumps(document, indent=1).encode() + b"\n"


def listed(folder: Path) -> tuple[list[str], list[str]] | None:
    """(files, folders) a previous export's marker lists, or None: no valid marker."""
    try:
        with open(folder / MARKER, "rb") as handle:
            return parse_marker(handle.read())
    except OSError:
        return None


def parse_marker(data: bytes) -> tuple[list[str], list[str]] | None:
    """(files, folders) a marker file's bytes list, or None: not a valid marker."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("format") != MARKER_FORMAT:
        return None
    if document.get("version") != MARKER_VERSION:
        return None
    files, folders = document.get("files"), document.get("folders")
    if not isinstance(files, list) or not isinstance(folders, list):
        return None
    if not all(isinstance(p, str) and _inside(p) for p in [*files, *folders]):
        return None
    return files, folders


def _inside(relative: str) -> bool:
    """A path a marker may list: relative, below the folder, no `..`."""
    path = PurePosixPath(relative)
    return (
        bool(relative)
        and not path.is_absolute()
        and ".." not in path.parts
        and "\x00" not in relative
    )


def unlisted_entries(folder: Path) -> list[str] | None:
    """What a previous export folder holds that its marker does not list (symlinks count as
    unlisted); None when it has no valid marker."""
    found = listed(folder)
    if found is None:
        return None
    files, folders = set(found[0]) | {MARKER} | WRITTEN_LATER, set(found[1])
    unlisted: list[str] = []
    for root, dirs, names in os.walk(folder):
        base = Path(root).relative_to(folder)
        for name in dirs:
            path = Path(root) / name
            relative = (base / name).as_posix()
            if path.is_symlink() or relative not in folders:
                unlisted.append(relative)
        for name in names:
            path = Path(root) / name
            relative = (base / name).as_posix()
            if path.is_symlink() or not path.is_file() or relative not in files:
                unlisted.append(relative)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
    return sorted(unlisted)


def is_empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


# --- the checks before the run -----------------------------------------------------------


def check_file_is_no_input(output: Path, inputs: Sequence[str]) -> None:
    """UsageError when an output file (`convert -o`) is one of the inputs: it would be
    replaced by its own conversion."""
    target = output.resolve()
    for given in inputs:
        if given != STDIN and Path(given).resolve() == target:
            raise UsageError(f"-o {output} is the input {given}: choose another output file")


def checked_target(out: Path, inputs: Sequence[str]) -> Path:
    """The output folder, resolved, once it is safe to replace; else UsageError (exit 2).

    Refused: a symlink (its target would be replaced), a file, a folder that is or holds an
    input or lies inside an input folder, and a folder that holds anything but a previous
    export of this tool.
    """
    if out.is_symlink():
        raise UsageError(
            f"--out {out} is a symbolic link: give the real folder (the export replaces the "
            "folder --out names, and never follows a link to replace what it points to)"
        )
    target = out.resolve()
    for given in inputs:
        if given == STDIN:
            continue
        source = Path(given).resolve()
        if source == target or target in source.parents:
            raise UsageError(
                f"--out {out} holds the input {given}: an export replaces its output folder, "
                "so it must not be an input's folder; choose another --out"
            )
        if source.is_dir() and source in target.parents:
            raise UsageError(
                f"--out {out} lies inside the input folder {given}: choose an --out outside it"
            )
    check_replaceable(target, out)
    return target


def check_replaceable(target: Path, shown: Path | None = None) -> None:
    """UsageError unless `target` is missing, an empty folder, or a previous export holding
    only what its marker lists."""
    shown = shown if shown is not None else target
    if target.is_symlink():
        raise UsageError(f"--out {shown} is a symbolic link: give the real folder")
    if not target.exists():
        return
    if not target.is_dir():
        raise UsageError(f"--out {shown} is a file, not a folder")
    try:
        empty = is_empty(target)
    except OSError as exc:
        raise OutputUnwritable(f"cannot read the output folder {shown}: {exc.strerror}") from exc
    if empty:
        return
    refuse_unless_own(str(shown), unlisted_entries(target))


def refuse_unless_own(shown: str, unlisted: list[str] | None) -> None:
    """UsageError for a non-empty --out that is not a previous export (`unlisted` None: no
    valid marker) or that holds what its marker does not list."""
    if unlisted is None:
        raise UsageError(
            f"--out {shown} is not empty and not a previous migrainefhir export (it has no "
            f"{MARKER} file): the export replaces its output folder as a whole, so it writes "
            "only into an empty folder, a new one, or one it wrote before"
        )
    if unlisted:
        more = f" and {len(unlisted) - 3} more" if len(unlisted) > 3 else ""
        names = ", ".join(unlisted[:3])
        raise UsageError(
            f"--out {shown} is a previous export but also holds files it did not write "
            f"({names}{more}): move them away, or choose another --out"
        )


def check_swappable(target: Path) -> None:
    """OutputUnwritable unless the final swap can work: renaming the target and a new folder
    in its parent. Checked before the work, so a run does not fail only at its very end."""
    if target.exists() and os.path.ismount(target):
        raise OutputUnwritable(
            f"--out {target} is a mount point, which cannot be replaced by renaming: give a "
            "folder inside it"
        )
    probe = target.parent / f".{target.name}.probe-{os.getpid()}"
    moved = target.parent / f".{target.name}.probed-{os.getpid()}"
    try:
        probe.mkdir(mode=PRIVATE_DIR)
        try:
            probe.rename(moved)
        finally:
            for path in (probe, moved):
                with contextlib.suppress(FileNotFoundError):
                    path.rmdir()
    except OSError as exc:
        raise OutputUnwritable(
            f"cannot create and rename folders in {target.parent}, as the export must to put "
            f"its output in place: {exc.strerror}"
        ) from exc


def make_private_parents(target: Path) -> None:
    """Create the folders above `target` that are missing, each owner-only (0700) whatever
    the umask."""
    missing = []
    parent = target.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=PRIVATE_DIR)
                os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise OutputUnwritable(f"cannot create the folder {folder}: {exc.strerror}") from exc


# --- one export at a time per output folder ----------------------------------------------


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Hold the output folder's lock for the run; OutputBusy when another run holds it.

    The lock file is removed when the run ends; the kernel releases the lock of a process that
    dies, so a killed run never blocks the next one.
    """
    path = lock_path(target)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        except OSError as exc:
            raise OutputUnwritable(f"cannot create the lock file {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise OutputBusy(
                    f"another export is writing to {target} (it holds {path}); wait for it "
                    "to finish, or choose another --out"
                ) from exc
            raise OutputUnwritable(f"cannot lock {path}: {exc.strerror}") from exc
        # The run before may have removed the file between our open and our lock: then the
        # lock is on a file nobody else can find, so start again with the file at the path.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def lock_is_held(path: Path) -> bool:
    """True when a running export holds this lock file (another open file of this process
    counts too: flock locks belong to open files)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def remove_free_lock(path: Path) -> bool:
    """Remove a lock file that no running export holds (a killed run's); True when removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            return False
        path.unlink()  # while holding it: a run that opened it before finds it gone (output_lock)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True
