"""Command lines for the CLI tests: `export` and `report` need a source system (no default)."""

from __future__ import annotations

from collections.abc import Sequence

# The source system the tests export under (the value the expected outputs were made with).
TEST_SOURCE_SYSTEM = "https://example.org/migrainefhir/source"


def with_source_system(args: Sequence[str]) -> list[str]:
    """An `export` or `report` command line with --source-system added, unless it names one
    itself (or a config file that may, or asks for --help)."""
    out = [str(arg) for arg in args]
    named = {"--source-system", "--config", "--help"} & set(out)
    if out[:1] in (["export"], ["report"]) and not named:
        out += ["--source-system", TEST_SOURCE_SYSTEM]
    return out
