"""Docs that cannot drift: the problem-code table, the README commands, every command help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrainefhir import problem_codes
from migrainefhir.cli import cli
from migrainefhir.problems import PROBLEM_CODES

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CI_SCRIPT = (REPO / ".ci" / "run").read_text()


def test_problem_code_table_matches_the_registry() -> None:
    rendered = problem_codes.render()
    assert (REPO / "docs" / "problem-codes.md").read_text() == rendered, (
        "regenerate: python -m migrainefhir.problem_codes > docs/problem-codes.md"
    )


def test_every_registered_code_is_namespaced_by_its_layer_family() -> None:
    problem_codes.render()  # imports every registering module
    for code in PROBLEM_CODES:
        assert re.fullmatch(r"(read|input|fhir|bundle|bulk)\.[a-z0-9-]+", code), code


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_readme_opens_with_the_two_commands() -> None:
    setup_and_run, setup_and_test = readme_commands()[:2]
    assert "migrainefhir export examples/" in setup_and_run
    assert setup_and_test.endswith("python -m pytest")


def test_the_readme_export_command_names_a_source_system_and_runs(tmp_path: Path) -> None:
    export = readme_commands()[0].split("&&")[-1].split()
    assert export[0].endswith("migrainefhir")
    args = [*export[1:], "--quiet", "--jobs", "1"]
    args[args.index("--out") + 1] = str(tmp_path / "out")
    args[args.index("examples/ndjson")] = str(REPO / "examples" / "ndjson")
    assert "--source-system" in args
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1].split("&&")[-1].strip()
    assert test_command in CI_SCRIPT


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_and_a_readme_row(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) > 3
    assert f"`migrainefhir {command}" in README
