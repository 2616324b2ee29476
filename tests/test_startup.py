"""Lazy start: `migrainefhir --help` and `--version` import none of the heavy modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "fhir",
    "fhir_core",
    "pydantic",
    "jsonschema",
    "jsonschema_rs",
    "orjson",
    "httpx",
    "jwt",
    "cryptography",
    "jinja2",
    "markupsafe",
    "pyspark",
    "py4j",
)

PROBE = """
import json, sys
sys.argv = ["migrainefhir", *json.loads(sys.argv[1])]
try:
    from migrainefhir.cli import main
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["export", "--help"], ["push", "--help"], ["report", "--help"]],
)
def test_help_and_version_import_no_heavy_module(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    heavy = [name for name in loaded if name.split(".")[0] in HEAVY]
    assert heavy == []
    assert done.stdout  # the help or version text was printed
