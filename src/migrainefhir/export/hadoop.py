"""Hadoop-compatible file systems (hdfs://, s3a://, abfss://, gs://, viewfs://, ...) for the
export on Spark, through the Hadoop FileSystem API of the Spark session's own JVM: the same
file systems, credentials and settings (`spark.hadoop.*`) as the Spark job, and no second
client library.

Only the driver uses it: to list the inputs and look at their first bytes, to read a file
again when the merge needs the verbatim text of a duplicate record, to copy a remote
`--previous` here, and to put the finished output in place at a remote `--out`. Executors read
the inputs through Spark's own file sources (spark_uris.py).

A remote `--out` follows the rules of a local one (target.py): only a new folder, an empty one
or a previous export holding nothing its marker does not list is replaced; the new output is
copied into a staging folder beside it and renamed into place only when complete, so a failed
or killed run leaves the previous output as it was. A rename is atomic on HDFS, ABFS and
GCS's hierarchical buckets; on S3 (s3a) it is a copy, so readers may briefly see a partial
folder there.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from migrainefhir.errors import InputUnreadable, OutputUnwritable, UsageError
from migrainefhir.export.target import (
    MARKER,
    PRIVATE_DIR,
    PRIVATE_FILE,
    WRITTEN_LATER,
    parse_marker,
    refuse_unless_own,
)
from migrainefhir.input.readers import FORMAT_BY_EXTENSION, STDIN

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# A URI with a scheme (hdfs://namenode/path, s3a://bucket/key, hdfs:///path); one-letter
# schemes are left alone (a Windows drive).
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(?://|/)")

_READ_CHUNK = 1024 * 1024  # bytes per call into the JVM


def is_uri(text: str) -> bool:
    """Whether a path given to the export is a file system URI rather than a local path."""
    return _URI.match(text) is not None


def local_path(text: str) -> str:
    """A `file:` URI as the local path it names (file:///data/x -> /data/x); anything else as
    given. The local file system is used directly, with all its local rules."""
    match = _URI.match(text)
    if match is None or match["scheme"].lower() != "file":
        return text
    rest = text[len(match["scheme"]) + 1 :]
    if rest.startswith("//"):
        rest = rest[2:]
        if not rest.startswith("/"):  # file://host/path: a host is not this machine's disk
            raise UsageError(f"{text}: a file: URI with a host; give file:///path")
    return rest


def is_hadoop_uri(text: str) -> bool:
    """A URI Spark alone can reach (any scheme but file:)."""
    return is_uri(text) and local_path(text) == text


@functools.lru_cache(maxsize=1024)  # called for every line a task reads
def same_file(uri: str) -> str:
    """One spelling of a qualified URI, so the driver's and Spark's names of a file compare
    equal: an empty authority dropped (Spark names a local file file:/x, Hadoop file:///x)."""
    parts = urlsplit(uri)
    if parts.netloc:
        return uri
    return f"{parts.scheme}:{parts.path}" + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True, slots=True)
class InputFile:
    """An input file: its name as the user gave it (Sources name it so) and its fully
    qualified URI (what Spark reports as a row's file)."""

    name: str
    uri: str
    size: int
    folder: str | None = None  # the given folder (qualified) it was found in, if any


@dataclass(frozen=True, slots=True)
class _Status:
    uri: str
    name: str
    is_dir: bool
    size: int


class HadoopFiles:
    """The file systems of a SparkSession's Hadoop configuration, as the driver needs them."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = spark._jvm
        self._conf: Any = spark._jsc.hadoopConfiguration()

    # --- reading --------------------------------------------------------------------------

    def status(self, uri: str) -> _Status | None:
        """The file or folder at `uri`, or None when there is none. Raises InputUnreadable."""
        path = self._path(uri)
        try:
            found = self._fs(path).getFileStatus(path)
        except Exception as exc:
            if _java_class(exc) == "java.io.FileNotFoundException":
                return None
            raise InputUnreadable(f"{uri}: {_reason(exc)}") from exc
        return self._status(found)

    def children(self, uri: str) -> list[_Status]:
        """What the folder `uri` holds, by name."""
        path = self._path(uri)
        try:
            found = self._fs(path).listStatus(path)
        except Exception as exc:
            raise InputUnreadable(f"{uri}: the folder cannot be read ({_reason(exc)})") from exc
        return sorted((self._status(each) for each in found), key=lambda s: s.name)

    def open(self, uri: str) -> BinaryIO:
        """The file, for reading (buffered; seekable)."""
        path = self._path(uri)
        try:
            stream = self._fs(path).open(path)
        except Exception as exc:
            raise InputUnreadable(f"{uri}: cannot be opened ({_reason(exc)})") from exc
        return io.BufferedReader(_JavaInput(stream, uri), _READ_CHUNK)

    def read_start(self, uri: str, size: int) -> bytes:
        """The first `size` bytes of the file (fewer when it is shorter)."""
        with self.open(uri) as handle:
            return handle.read(size)

    # --- writing (the output) ---------------------------------------------------------------

    def make_private_folder(self, uri: str) -> None:
        path = self._path(uri)
        fs = self._fs(path)
        fs.mkdirs(path)
        fs.setPermission(path, self._permission(PRIVATE_DIR))

    def upload(self, local: Path, uri: str) -> None:
        """Copy the local folder `local` to the new folder `uri`, folders 0700 and files 0600
        (where the file system has permissions)."""
        self.make_private_folder(uri)
        for root, folders, names in os.walk(local):
            base = Path(root).relative_to(local).as_posix()
            here = uri if base == "." else f"{uri}/{base}"
            for folder in sorted(folders):
                self.make_private_folder(f"{here}/{folder}")
            for name in sorted(names):
                target = self._path(f"{here}/{name}")
                fs = self._fs(target)
                fs.copyFromLocalFile(False, True, self._path(str(Path(root, name))), target)
                fs.setPermission(target, self._permission(PRIVATE_FILE))

    def download(self, uri: str, local: Path) -> None:
        """Copy the remote folder `uri` to the new local folder `local`."""
        path = self._path(uri)
        self._fs(path).copyToLocalFile(False, path, self._path(str(local)), True)

    def rename(self, source: str, target: str) -> None:
        path = self._path(source)
        if not self._fs(path).rename(path, self._path(target)):
            raise OutputUnwritable(f"cannot rename {source} to {target}")

    def delete(self, uri: str, recursive: bool = False) -> bool:
        path = self._path(uri)
        return bool(self._fs(path).delete(path, recursive))

    def walk(self, uri: str) -> tuple[list[str], list[str]]:
        """(files, folders) below the folder `uri`, as paths relative to it."""
        files: list[str] = []
        folders: list[str] = []
        pending = [("", uri)]
        while pending:
            relative, here = pending.pop()
            for child in self.children(here):
                name = f"{relative}{child.name}"
                if child.is_dir:
                    folders.append(name)
                    pending.append((f"{name}/", child.uri))
                else:
                    files.append(name)
        return sorted(files), sorted(folders)

    # --- the JVM's objects ----------------------------------------------------------------

    def qualified(self, uri: str) -> str:
        """`uri` fully qualified (scheme and authority), in the form same_file() gives."""
        path = self._path(uri)
        try:
            return same_file(str(self._fs(path).makeQualified(path).toUri().toString()))
        except Exception as exc:
            raise InputUnreadable(f"{uri}: {_reason(exc)}") from exc

    def beside(self, uri: str, name: str) -> str:
        """The path `name` in the folder that holds `uri` (Hadoop joins it: a folder at the
        root of a file system has no parent to spell as text)."""
        path = self._path(uri)
        return str(self._jvm.org.apache.hadoop.fs.Path(path.getParent(), name).toString())

    def parent(self, uri: str) -> str:
        return str(self._path(uri).getParent().toString())

    def _path(self, uri: str) -> Any:
        try:
            return self._jvm.org.apache.hadoop.fs.Path(uri)
        except Exception as exc:
            raise UsageError(f"{uri}: not a file system path ({_reason(exc)})") from exc

    def _fs(self, path: Any) -> Any:
        try:
            return path.getFileSystem(self._conf)
        except Exception as exc:  # e.g. "No FileSystem for scheme" (a missing connector)
            raise InputUnreadable(f"{path.toString()}: {_reason(exc)}") from exc

    def _status(self, found: Any) -> _Status:
        path = found.getPath()
        return _Status(
            str(path.toUri().toString()),
            str(path.getName()),
            bool(found.isDirectory()),
            int(found.getLen()),
        )

    def _permission(self, mode: int) -> Any:
        return self._jvm.org.apache.hadoop.fs.permission.FsPermission(mode)


class _JavaInput(io.RawIOBase):
    """A Hadoop FSDataInputStream as a Python binary stream."""

    def __init__(self, stream: Any, uri: str) -> None:
        self._stream = stream
        self._uri = uri

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.readNBytes(min(len(buffer), _READ_CHUNK))
        except Exception as exc:
            raise OSError(f"{self._uri}: reading failed ({_reason(exc)})") from exc
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end")
        self._stream.seek(offset)
        return offset

    def tell(self) -> int:
        return int(self._stream.getPos())

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._stream.close()
        super().close()


# --- the inputs -----------------------------------------------------------------------------


def expand_inputs(
    files: HadoopFiles, paths: Sequence[str], input_format: str | None
) -> list[InputFile]:
    """The files to read, in order, with readers.expand_inputs's rules: files as given, each
    folder's supported files by name (hidden ones and subfolders skipped), a file named twice
    read once. A local path is read as a file: URI (on a cluster, every node's own disk)."""
    found: list[InputFile] = []
    seen: set[str] = set()
    for given in paths:
        if given == STDIN:
            raise UsageError(
                "standard input ('-') cannot be read with file system URIs: give a file"
            )
        for each in _expand_one(files, given, input_format):
            if each.uri not in seen:
                seen.add(each.uri)
                found.append(each)
    return found


def _expand_one(files: HadoopFiles, given: str, input_format: str | None) -> list[InputFile]:
    # not Path.as_uri(): Hadoop takes a path's characters as they are, never %-decoded
    uri = given if is_uri(given) else f"file://{os.path.abspath(given)}"
    status = files.status(uri)
    if status is None:
        raise InputUnreadable(f"{given}: no such file or folder")
    if not status.is_dir:
        if input_format is None and _format(given) is None:
            raise InputUnreadable(
                f"{given}: unsupported file type (expected .json, .ndjson, .jsonl or .csv, "
                "or give --input-format)"
            )
        _refuse_hidden_to_spark(given, status.name)
        return [InputFile(given, files.qualified(uri), status.size)]
    inside = [
        child
        for child in files.children(uri)
        if not child.is_dir and not child.name.startswith(".") and _format(child.name)
    ]
    for child in inside:
        _refuse_hidden_to_spark(f"{given.rstrip('/')}/{child.name}", child.name)
    if not inside:
        raise InputUnreadable(
            f"{given}: the folder has no .json, .ndjson, .jsonl or .csv files "
            "(subfolders are not read)"
        )
    folder, qualified = given.rstrip("/"), files.qualified(uri).rstrip("/")
    return [
        InputFile(f"{folder}/{child.name}", files.qualified(child.uri), child.size, qualified)
        for child in inside
    ]


def _refuse_hidden_to_spark(given: str, name: str) -> None:
    """Spark's file sources skip files whose names start with "_" or "." (Hadoop's markers
    such as _SUCCESS), even when named one by one: their records would be lost without a
    word, so such a file is an error before any work."""
    if name.startswith(("_", ".")):
        raise InputUnreadable(
            f"{given}: Spark does not read files whose names start with '_' or '.'; rename "
            "the file to read it"
        )


def _format(name: str) -> str | None:
    return FORMAT_BY_EXTENSION.get(os.path.splitext(name)[1].lower())


# --- the output -----------------------------------------------------------------------------


def check_output(files: HadoopFiles, uri: str, inputs: Sequence[InputFile]) -> None:
    """A remote --out, checked with a local one's rules (target.py) before any work: never an
    input or an input's folder; missing, empty, or a previous export holding only what its
    marker lists. Else UsageError."""
    target = files.qualified(uri).rstrip("/")
    for each in inputs:
        folder = each.uri.rsplit("/", 1)[0]
        if each.uri == target or each.uri.startswith(f"{target}/") or folder == target:
            raise UsageError(
                f"--out {uri} holds the input {each.name}: an export replaces its output "
                "folder, so it must not be an input's folder; choose another --out"
            )
        if each.folder is not None and target.startswith(f"{each.folder}/"):
            raise UsageError(
                f"--out {uri} lies inside the input folder {each.name.rsplit('/', 1)[0]}: "
                "choose an --out outside it"
            )
    status = _output_status(files, uri)
    if status is None:
        return
    if not status.is_dir:
        raise UsageError(f"--out {uri} is a file, not a folder")
    present, folders = _output_walk(files, uri)
    if not present and not folders:
        return
    refuse_unless_own(uri, _unlisted(files, uri, present, folders))


def publish(files: HadoopFiles, local: Path, uri: str) -> None:
    """Put the finished local output folder `local` in place at the remote folder `uri`.

    Copied first into `.NAME.staging-PID` beside it; then the previous output (if any) is
    renamed aside, the new one renamed in, and what the old marker lists is deleted. Raises
    OutputUnwritable with the previous output intact when the copy fails.
    """
    check_output(files, uri, [])  # nothing was put there while this run worked
    target = uri.rstrip("/")
    name = target.rsplit("/", 1)[1]
    staging = files.beside(target, f".{name}.staging-{os.getpid()}")
    previous = files.beside(target, f".{name}.previous-{os.getpid()}")
    try:
        _output(files.delete, staging, True)
        parent = files.parent(target)
        if _output_status(files, parent) is None:
            _output(files.make_private_folder, parent)
        _output(files.upload, local, staging)
        moved = _output_status(files, target) is not None
        if moved:
            _output(files.rename, target, previous)
        try:
            _output(files.rename, staging, target)
        except BaseException:
            if moved:
                files.rename(previous, target)
            raise
    except BaseException:
        with contextlib.suppress(Exception):
            files.delete(staging, True)
        raise
    if moved:
        _remove_previous(files, previous)


def download_previous(files: HadoopFiles, uri: str, local: Path) -> None:
    """A remote --previous export, copied to `local` for the run to compare with."""
    status = files.status(uri)
    if status is None or not status.is_dir:
        raise InputUnreadable(f"--previous {uri}: not a folder")
    try:
        files.download(uri, local)
    except Exception as exc:
        raise InputUnreadable(f"--previous {uri}: cannot be copied ({_reason(exc)})") from exc


def _remove_previous(files: HadoopFiles, previous: str) -> None:
    """The old output, renamed aside: only what its marker lists, then the folder if empty."""
    listed = _read_marker(files, previous)
    if listed is None:
        return
    names, folders = listed
    for name in [*names, MARKER, *WRITTEN_LATER]:
        with contextlib.suppress(Exception):
            files.delete(f"{previous}/{name}")
    for folder in sorted(folders, key=lambda f: f.count("/"), reverse=True):
        with contextlib.suppress(Exception):
            files.delete(f"{previous}/{folder}")
    with contextlib.suppress(Exception):
        files.delete(previous)


def _unlisted(
    files: HadoopFiles, uri: str, present: list[str], folders: list[str]
) -> list[str] | None:
    listed = _read_marker(files, uri)
    if listed is None:
        return None
    known_files = set(listed[0]) | {MARKER} | WRITTEN_LATER
    known_folders = set(listed[1])
    unlisted = [name for name in present if name not in known_files]
    unlisted += [name for name in folders if name not in known_folders]
    return sorted(unlisted)


def _read_marker(files: HadoopFiles, folder: str) -> tuple[list[str], list[str]] | None:
    marker = f"{folder.rstrip('/')}/{MARKER}"
    try:
        if _output_status(files, marker) is None:
            return None
        with files.open(marker) as handle:
            return parse_marker(handle.read(1024 * 1024 * 64))
    except (InputUnreadable, OSError):
        return None


def _output_status(files: HadoopFiles, uri: str) -> _Status | None:
    try:
        return files.status(uri)
    except InputUnreadable as exc:
        raise OutputUnwritable(f"--out {exc}") from exc


def _output_walk(files: HadoopFiles, uri: str) -> tuple[list[str], list[str]]:
    try:
        return files.walk(uri)
    except InputUnreadable as exc:
        raise OutputUnwritable(f"--out {exc}") from exc


def _output(action: Any, *arguments: Any) -> Any:
    """One step of putting the output in place; a Java failure as OutputUnwritable."""
    try:
        return action(*arguments)
    except (OutputUnwritable, UsageError):
        raise
    except Exception as exc:
        raise OutputUnwritable(f"cannot write the output: {_reason(exc)}") from exc


# --- Java exceptions --------------------------------------------------------------------------


def _java_class(exc: BaseException) -> str | None:
    java = getattr(exc, "java_exception", None)
    if java is None:
        return None
    try:
        return str(java.getClass().getName())
    except Exception:
        return None


def _reason(exc: BaseException) -> str:
    """A Java exception's own message, one line (not py4j's stack trace)."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            message = java.getMessage()
            name = str(java.getClass().getSimpleName())
            return f"{name}: {message}".splitlines()[0] if message else name
        except Exception:
            pass
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
