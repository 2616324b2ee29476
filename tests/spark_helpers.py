"""What the Spark tests share: the check that Spark can run here, and the output compared.

`require_spark()` skips the calling test module when pyspark or Java is missing, except in CI
(CI=true), where that is a failure: CI installs both (.ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI") == "true"
EXAMPLES = Path(__file__).parent.parent / "examples"


def require_spark() -> None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if IN_CI:
            raise RuntimeError("CI must have Java 17+ for the Spark tests (.ci/run installs it)")
        pytest.skip("no Java: the Spark tests need Java 17+", allow_module_level=True)
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("pyspark is not installed: pip install '.[spark]'", allow_module_level=True)


def _output_files(folder: Path) -> list[Path]:
    """Everything below `folder` but Hadoop's `.NAME.crc` checksum files, which its local file
    system writes beside each file (Hadoop's own listings hide them)."""
    return [path for path in sorted(folder.rglob("*")) if not path.name.endswith(".crc")]


def tree(folder: Path) -> dict[str, bytes]:
    """Every output file's bytes, by its path in the folder."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in _output_files(folder)
        if path.is_file()
    }


def modes(folder: Path) -> dict[str, int]:
    """Every output file's and folder's mode, by its path in the folder."""
    return {str(path.relative_to(folder)): path.stat().st_mode for path in _output_files(folder)}


def write_mixed(folder: Path) -> list[str]:
    """Input files in `folder` that mix every case the merge must get right, by name in input
    order: every record type; contract rejects; a malformed line, a line that is not UTF-8, a
    CRLF line and blank lines; duplicate ids whose first occurrence is in an earlier part of
    the same file (a later shard) or in another file (a whole-file JSON shard)."""
    lines = (EXAMPLES / "ndjson" / "diary-entries.ndjson").read_text().splitlines()[:150]
    first, bad = json.loads(lines[2]), json.loads(lines[40])
    bad["severity"] = 11  # input.range
    lines[40] = json.dumps(bad)
    lines[60] = "{not json"
    lines[70] = lines[70] + "\r"
    lines.insert(80, "")
    lines.insert(81, "   ")
    lines.append(json.dumps(first))  # a duplicate of line 3, in the last shard
    data = "\n".join(lines).encode() + b"\n"
    data = data.replace(b"{not json", b'{"x": "\xff"}\n{not json')
    (folder / "diary.ndjson").write_bytes(data)
    (folder / "again.json").write_text(f"[\n{lines[4]},\n{lines[6]}\n]\n")  # lines 5 and 7
    shutil.copy(EXAMPLES / "json" / "patients.json", folder / "patients.json")
    shutil.copy(EXAMPLES / "csv" / "ketamine-sessions.csv", folder / "sessions.csv")
    return ["diary.ndjson", "patients.json", "sessions.csv", "again.json"]
