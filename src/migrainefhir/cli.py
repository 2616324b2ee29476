"""The command line: options -> one library call (pipeline.py) -> rendered report -> exit code.

Only this module imports click. Heavy modules (fhir.resources, schema compilation) are imported
inside the commands, so `migrainefhir --help` and `--version` stay fast.
"""

from __future__ import annotations

import click

from migrainefhir import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="migrainefhir")
def cli() -> None:
    """Carry migraine headache diaries and ketamine therapy sessions into FHIR R4."""


def main() -> None:
    cli()
