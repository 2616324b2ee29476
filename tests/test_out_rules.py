"""`export --out` never destroys what is not the export's own (issue 19, item 1), end to end.

Each case runs the real command line in its own process, in a folder holding input diaries and
an unrelated document, and compares every file under that folder (bytes and mode) before and
after: a refused run exits 2 with a message that says why, and changes nothing at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_args import with_source_system

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "ndjson"
ARGS = ["--timestamp", "2026-07-01T00:00:00Z", "--jobs", "1", "--quiet"]


def migrainefhir(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "migrainefhir", *with_source_system(args)],
        cwd=cwd,
        env=env,
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def every_file(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file and folder under `folder`: its mode, and a file's bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        data = b"" if path.is_dir() else path.read_bytes()
        found[str(path.relative_to(folder))] = (path.lstat().st_mode, data)
    return found


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A user's folder: input diaries in data/, and a document that is nobody's export."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(EXAMPLES / "patients.ndjson", data / "patients.ndjson")
    shutil.copy(EXAMPLES / "diary-entries.ndjson", data / "diary-entries.ndjson")
    (tmp_path / "thesis.docx").write_bytes(b"PK\x03\x04 two years of work")
    (data / "consent.pdf").write_bytes(b"%PDF-1.7 signed consent")
    return tmp_path


def assert_refused(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("cwd", "inputs", "out", "reason"),
    [
        ("data", ["."], ".", "holds the input ."),
        (".", ["data"], "data", "holds the input data"),
        (".", ["data"], "data/out", "lies inside the input folder data"),
        (".", ["data/patients.ndjson"], "data", "holds the input data/patients.ndjson"),
        (".", ["data"], ".", "holds the input data"),
        (".", ["data/patients.ndjson"], "data/patients.ndjson", "is a file"),
    ],
    ids=["dot-into-dot", "folder-into-itself", "into-a-subfolder", "file-into-its-folder",
         "folder-into-its-parent", "onto-the-file"],
)  # fmt: skip
def test_an_out_that_is_or_holds_or_lies_in_an_input_is_refused(
    home: Path, cwd: str, inputs: list[str], out: str, reason: str
) -> None:
    before = every_file(home)
    done = migrainefhir("export", *inputs, "--out", out, *ARGS, cwd=home / cwd)
    assert_refused(done, reason)
    assert every_file(home) == before


def test_an_out_holding_a_file_the_tool_did_not_write_is_refused(home: Path) -> None:
    (home / "results").mkdir()
    shutil.copy(home / "thesis.docx", home / "results" / "thesis.docx")
    before = every_file(home)
    done = migrainefhir("export", "data", "--out", "results", *ARGS, cwd=home)
    assert_refused(done, "is not empty and not a previous migrainefhir export")
    assert every_file(home) == before


def test_standard_input_into_a_folder_of_other_files_is_refused(home: Path) -> None:
    before = every_file(home)
    stdin = (home / "data" / "diary-entries.ndjson").read_bytes()
    done = migrainefhir(
        "export", "-", "--input-format", "ndjson", "--out", ".", *ARGS, cwd=home, stdin=stdin
    )
    assert_refused(done, "is not empty and not a previous migrainefhir export")
    assert every_file(home) == before


def test_a_previous_export_with_a_file_added_is_refused_and_kept_whole(home: Path) -> None:
    first = migrainefhir("export", "data", "--out", "out", *ARGS, cwd=home)
    assert first.returncode == 0, first.stderr
    (home / "out" / "my-notes.txt").write_text("added by hand")
    before = every_file(home)
    done = migrainefhir("export", "data", "--out", "out", *ARGS, cwd=home)
    assert_refused(done, "holds files it did not write (my-notes.txt)")
    assert every_file(home) == before


def test_a_previous_export_is_replaced_and_nothing_beside_it_changes(home: Path) -> None:
    first = migrainefhir("export", "data/patients.ndjson", "--out", "out", *ARGS, cwd=home)
    assert first.returncode == 0, first.stderr
    beside = {k: v for k, v in every_file(home).items() if not k.startswith("out")}
    done = migrainefhir("export", "data", "--out", "out", *ARGS, cwd=home)
    assert done.returncode == 0, done.stderr
    assert {k: v for k, v in every_file(home).items() if not k.startswith("out")} == beside
    assert (home / "out" / "DiagnosticReport.ndjson").exists() or any(
        (home / "out").glob("Observation*.ndjson")
    )


def test_a_symlink_out_is_refused_and_its_target_kept(home: Path) -> None:
    first = migrainefhir("export", "data", "--out", "real", *ARGS, cwd=home)
    assert first.returncode == 0, first.stderr
    (home / "link").symlink_to(home / "real")
    before = every_file(home)
    done = migrainefhir("export", "data", "--out", "link", *ARGS, cwd=home)
    assert_refused(done, "--out link is a symbolic link")
    assert every_file(home) == before


def test_a_file_as_out_is_refused(home: Path) -> None:
    before = every_file(home)
    done = migrainefhir("export", "data", "--out", "thesis.docx", *ARGS, cwd=home)
    assert done.returncode == 2, done.stderr
    assert every_file(home) == before


def test_convert_to_its_own_input_file_is_refused(home: Path) -> None:
    before = every_file(home)
    done = migrainefhir(
        "convert", "data/patients.ndjson", "-o", "data/patients.ndjson", *ARGS[:2], cwd=home
    )
    assert_refused(done, "-o data/patients.ndjson is the input data/patients.ndjson")
    assert every_file(home) == before
