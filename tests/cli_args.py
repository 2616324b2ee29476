"""Command lines for the CLI tests: `export` needs a source system (it has no default)."""

from __future__ import annotations

from collections.abc import Sequence

# The source system the tests export under (the value the expected outputs were made with).
TEST_SOURCE_SYSTEM = "https://example.org/migrainefhir/source"


def with_source_system(args: Sequence[str]) -> list[str]:
    """An `export` command line with --source-system added, unless it names one itself (or a
    config file that may, or asks for --help)."""
    out = [str(arg) for arg in args]
    if out[:1] == ["export"] and not {"--source-system", "--config", "--help"} & set(out):
        out += ["--source-system", TEST_SOURCE_SYSTEM]
    return out
