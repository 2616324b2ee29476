"""The shipped examples export with no reject in every format, and the output validates clean."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrainefhir.pipeline import ExportOptions, InputOptions, export, validate_paths

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ndjson"


@pytest.fixture(scope="module", params=["ndjson", "collection", "transaction"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "out"
    options = ExportOptions(
        out=out, export_time=datetime(2026, 7, 1, tzinfo=UTC), format=request.param
    )
    result = export([str(EXAMPLES)], InputOptions(), options)
    assert result.report.counts.total_rejected == 0
    assert result.report.error_count == 0
    return out


def test_every_example_record_is_exported(exported: Path) -> None:
    assert (exported / "rejects.ndjson").read_text() == ""


def test_the_export_validates_with_no_error(exported: Path) -> None:
    target = exported if (exported / "manifest.json").exists() else exported / "bundles"
    report = validate_paths([str(target)])
    assert [str(p) for p in report.problems if p.is_error] == []
    # The only warnings allowed: relative manifest urls (README: use --base-url to host them).
    assert {p.code for p in report.problems} <= {"bulk.relative-url"}
    assert report.counts.total_read > 4000
