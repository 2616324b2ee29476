"""`validate` on hostile FHIR (issue 25 item 6): deep nesting and over-long NDJSON lines are
Problems with their own codes, never a traceback, and a long line is never held whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.validate.load import MAX_FHIR_DEPTH, MAX_NDJSON_LINE_BYTES, nesting_depth


def nested_bundle(levels: int) -> dict[str, Any]:
    """A collection Bundle whose only entry holds a Bundle, `levels` times (3 JSON levels each)."""
    top: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    here = top
    for number in range(levels):
        inner: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
        url = f"urn:uuid:0b6e8a1e-2f0a-4d7e-9a51-1c1f0b3c{number:04d}"
        here["entry"] = [{"fullUrl": url, "resource": inner}]
        here = inner
    return top


# A third party's extensions (not an example URL), which validate is told to accept.
EXTENSION_DOMAIN = "https://ehr.hospital.test/fhir/"
EXTENSION = EXTENSION_DOMAIN + "StructureDefinition/nested"


def nested_extensions(levels: int) -> dict[str, Any]:
    """A Patient with one extension holding an extension, `levels` deep (2 JSON levels each)."""
    top: dict[str, Any] = {"url": EXTENSION}
    here = top
    for _ in range(levels - 1):
        inner: dict[str, Any] = {"url": EXTENSION}
        here["extension"] = [inner]
        here = inner
    here["valueString"] = "x"
    return {"resourceType": "Patient", "id": "p1", "extension": [top]}


def validate(path: Path) -> tuple[int, str]:
    args = ["validate", str(path), "--allow-extension-domain", EXTENSION_DOMAIN]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_a_bundle_nested_100_levels_is_too_deep_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(nested_bundle(100)))
    code, output = validate(path)
    assert code == 1
    assert f"error [fhir.too-deep] $: the file nests arrays/objects more than {MAX_FHIR_DEPTH}" in (
        output
    )


def test_extensions_300_deep_on_an_ndjson_line_are_too_deep_and_the_next_line_is_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "Patient.ndjson"
    lines = [nested_extensions(300), nested_extensions(3)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, output = validate(path)
    assert code == 1
    assert f"{path}:1: error [fhir.too-deep] $: the line nests" in output
    assert "valid: 1 (Patient 1)" in output


def nested_bundle_text(levels: int) -> str:
    """nested_bundle as text, written directly (json.dumps itself recurses)."""
    head = '{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
    inner = '{"resourceType":"Bundle","type":"collection"}'
    return head * levels + inner + "}]}" * levels


def test_400_levels_are_too_deep_not_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "deeper.json"
    path.write_text(nested_bundle_text(400))
    code, output = validate(path)
    assert code == 1
    assert "[fhir.too-deep]" in output
    assert "not valid JSON" not in output


def test_nesting_up_to_the_limit_is_validated(tmp_path: Path) -> None:
    resource = nested_extensions((MAX_FHIR_DEPTH - 1) // 2)
    assert nesting_depth(resource) == MAX_FHIR_DEPTH - 1
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(resource))
    code, output = validate(path)
    assert code == 0, output


def test_nesting_depth_counts_arrays_and_objects() -> None:
    assert nesting_depth(1) == 0
    assert nesting_depth({"a": 1}) == 1
    assert nesting_depth({"a": [{"b": []}]}) == 4
    assert nesting_depth(nested_bundle(2)) == 7


_MEASURE = """
import resource, sys
from migrainefhir.cli import cli
try:
    cli(sys.argv[1:])
finally:
    sys.stderr.write(f"\\nPEAK-KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
"""


def run_measured(path: Path) -> tuple[int, str, int]:
    """validate in a fresh process: (exit code, stdout, peak memory in MiB)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    peak = int(done.stderr.rsplit("PEAK-KIB ", 1)[1].split()[0]) // 1024
    return done.returncode, done.stdout, peak


def test_an_over_long_ndjson_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    small = tmp_path / "small" / "Basic.ndjson"
    small.parent.mkdir()
    basic = json.dumps({"resourceType": "Basic", "id": "b1", "code": {"text": "x"}})
    small.write_text(basic + "\n")
    path = tmp_path / "Basic.ndjson"
    size = 6 * MAX_NDJSON_LINE_BYTES
    with path.open("wb") as handle:
        handle.write(b'{"resourceType":"Basic","id":"b0","code":{"text":"')
        chunk = b"A" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            handle.write(chunk)
        handle.write(b'"}}\n' + basic.encode() + b"\n")
    _, _, baseline = run_measured(small)
    code, output, peak = run_measured(path)
    assert code == 1
    assert f"{path}:1: error [fhir.too-large] $: the line is longer than" in output
    assert "valid: 1 (Basic 1)" in output
    # Reading the 96 MiB line whole would take at least that much more; pieces of 16 MiB don't.
    assert peak - baseline < 48, (baseline, peak)
