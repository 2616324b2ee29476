"""Independent R4 validators (tools/independent/) accept our output and agree with our validator.

Three validators that share no code with fhir.resources: FHIR.js (StructureDefinition-based),
the official R4 4.0.1 JSON schema (ajv) and Google's strict R4 parser. Every export format of
the shipped examples must pass all three, so must our valid validator corpus, and our
validator must never accept a corpus file that one of them rejects.

Needs the pinned tools: `bash tools/independent/install.sh`; skipped when they are missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from migrainefhir.validate import validate_paths
from tests.cli_args import TEST_SOURCE_SYSTEM

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools" / "independent"
CHECK = TOOLS / "check.py"
EXAMPLES = ROOT / "examples" / "ndjson"
VALID = ROOT / "tests" / "data" / "validator" / "valid"
INVALID = ROOT / "tests" / "data" / "validator" / "invalid"
FORMATS = ("ndjson", "collection", "transaction")
VALIDATORS = ("fhir.js", "r4-schema", "google-fhir-r4")
# Google's pure-Python parser costs ~12 ms a resource: in this test it checks up to this many
# distinct resources of each shape (type + element paths); the others check every resource.
GOOGLE_PER_SHAPE = 3

pytestmark = pytest.mark.skipif(
    not (TOOLS / "node_modules" / "fhir").is_dir() or not (TOOLS / ".venv" / "bin").is_dir(),
    reason="independent validators not installed: run `bash tools/independent/install.sh`",
)

Finding = dict[str, Any]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/ exported in every format by the README's command, with --validation fast.

    Fast mode halves the export time and writes the same bytes today; were our two modes ever
    to differ, fast mode's output is the larger (full mode only rejects more), so checking it
    covers everything the default mode writes.
    """
    out = tmp_path_factory.mktemp("independent")
    for name in FORMATS:
        command = [sys.executable, "-m", "migrainefhir", "export", str(EXAMPLES)]
        command += ["--out", str(out / name), "--format", name]
        command += ["--source-system", TEST_SOURCE_SYSTEM]
        done = subprocess.run(
            [*command, "--timestamp", "2026-07-01T00:00:00Z", "--validation", "fast", "--quiet"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        # 1 = some records rejected: the written resources must still pass (checked below).
        assert done.returncode in (0, 1), done.stderr
    return out


def run_harness(*paths: Path, google_per_shape: int | None = None) -> dict[str, Any]:
    sample = [] if google_per_shape is None else [f"--google-per-shape={google_per_shape}"]
    done = subprocess.run(
        [sys.executable, str(CHECK), "--json", *sample, *(str(p) for p in paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def report(exports: Path) -> dict[str, Any]:
    """The harness over the exports (Google's parser on a sample) and over both corpora
    (every validator on every file: the corpus files differ from each other by one value)."""
    on_exports = run_harness(
        *(exports / name for name in FORMATS), google_per_shape=GOOGLE_PER_SHAPE
    )
    on_corpus = run_harness(VALID, INVALID)
    return {
        "files": on_exports["files"] + on_corpus["files"],
        "findings": on_exports["findings"] + on_corpus["findings"],
    }


def errors_under(report: dict[str, Any], folder: Path) -> list[Finding]:
    return [
        f
        for f in report["findings"]
        if f["severity"] == "error" and Path(f["file"]).is_relative_to(folder)
    ]


def describe(findings: list[Finding]) -> str:
    return "\n".join(
        f"{f['file']}:{f['line']} entry {f['entry']} {f['resource']} [{f['validator']}] "
        f"{f['path']}: {f['message']}"
        for f in findings
    )


@pytest.mark.parametrize("name", FORMATS)
def test_every_export_format_writes_resources_the_harness_reads(
    report: dict[str, Any], exports: Path, name: str
) -> None:
    files = [f for f in report["files"] if Path(f).is_relative_to(exports / name)]
    # ndjson: 5 resource types + OperationOutcome; Bundles: one or more per patient.
    assert len(files) >= 5


@pytest.mark.parametrize("name", FORMATS)
def test_every_exported_resource_passes_the_independent_validators(
    report: dict[str, Any], exports: Path, name: str
) -> None:
    found = errors_under(report, exports / name)
    assert found == [], describe(found)


def test_the_valid_corpus_passes_the_independent_validators(report: dict[str, Any]) -> None:
    found = errors_under(report, VALID)
    assert found == [], describe(found)


@pytest.mark.parametrize("validator", VALIDATORS)
def test_each_independent_validator_rejects_an_element_r4_does_not_define(
    report: dict[str, Any], validator: str
) -> None:
    # The harness must be able to fail: every validator rejects obs-unknown-element.json.
    rejected = {f["file"] for f in errors_under(report, INVALID) if f["validator"] == validator}
    assert str(INVALID / "obs-unknown-element.json") in rejected


def test_our_validator_rejects_every_corpus_file_an_independent_validator_rejects(
    report: dict[str, Any],
) -> None:
    rejected_by_them = sorted({f["file"] for f in errors_under(report, INVALID)})
    assert len(rejected_by_them) >= 20  # the harness really ran on the corpus
    accepted_by_us = [
        path
        for path in rejected_by_them
        if not any(p.is_error for p in validate_paths([path]).problems)
    ]
    theirs = [f for f in errors_under(report, INVALID) if f["file"] in accepted_by_us]
    assert accepted_by_us == [], describe(theirs)
