"""The CLI group itself: --help and --version work and say who we are."""

from click.testing import CliRunner

from migrainefhir import __version__
from migrainefhir.cli import cli


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"migrainefhir, version {__version__}\n"


def test_help_describes_the_tool() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "FHIR R4" in result.output
