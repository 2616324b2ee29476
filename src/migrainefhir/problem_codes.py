"""The docs table of every permanent problem code, generated from the registry.

`python -m migrainefhir.problem_codes > docs/problem-codes.md` rewrites it; a test keeps the
checked-in file equal to what this prints, so the docs cannot drift from the code.
"""

from __future__ import annotations

import importlib

from migrainefhir.problems import PROBLEM_CODES, CodeInfo

# Every module that registers codes; importing them fills the registry.
REGISTERING_MODULES = (
    "migrainefhir.input.readers",
    "migrainefhir.schema",
    "migrainefhir.input.model",
    "migrainefhir.input.contract",
    "migrainefhir.validate.load",
    "migrainefhir.validate.structure",
    "migrainefhir.validate.profiles",
    "migrainefhir.validate.rules",
    "migrainefhir.validate.core",
    "migrainefhir.validate.references",
    "migrainefhir.validate.bulk",
    "migrainefhir.export.worker",
)

LAYER_ORDER = ("read", "input", "structure", "profile", "rule", "core", "bundle")


def all_codes() -> frozenset[str]:
    """Every registered problem code (importing every registering module first)."""
    for module in REGISTERING_MODULES:
        importlib.import_module(module)
    return frozenset(PROBLEM_CODES)


def registry() -> dict[str, CodeInfo]:
    """Every registered problem code with what it means, sorted by code."""
    all_codes()
    return dict(sorted(PROBLEM_CODES.items()))


def render() -> str:
    registry()
    lines = [
        "# Problem codes",
        "",
        "Every problem migrainefhir reports carries one of these permanent codes (a code is never",
        "reused for another meaning). `validate --ignore CODE` suppresses one. Generated from the",
        "registry by `python -m migrainefhir.problem_codes`; do not edit by hand.",
        "",
        "| code | severity | layer | meaning |",
        "|---|---|---|---|",
    ]
    known_layers = {layer: n for n, layer in enumerate(LAYER_ORDER)}
    rows = sorted(
        PROBLEM_CODES.values(), key=lambda c: (known_layers.get(c.layer, len(LAYER_ORDER)), c.code)
    )
    for info in rows:
        summary = info.summary.replace("|", "\\|")
        lines.append(f"| `{info.code}` | {info.severity.value} | {info.layer} | {summary} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
