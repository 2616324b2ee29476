"""The command line: options -> one library call (pipeline.py) -> rendered report -> exit code.

Only this module imports click. Heavy modules (fhir.resources, schema compilation) are imported
inside the commands, so `migrainefhir --help` and `--version` stay fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from migrainefhir import __version__
from migrainefhir.errors import ExitCode, MigraineFhirError
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM

if TYPE_CHECKING:
    from migrainefhir.input.intake import InputOptions
    from migrainefhir.problems import Report

F = TypeVar("F", bound=Callable[..., Any])

RECORD_TYPE_CHOICE = click.Choice(["diary-entry", "ketamine-session", "patient"])
INPUT_FORMAT_CHOICE = click.Choice(["json", "ndjson", "csv"])


def _zone(_ctx: click.Context, _param: click.Parameter, value: str | None) -> ZoneInfo | None:
    if value is None:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.BadParameter(f"{value!r} is not an IANA time zone name") from exc


def input_options(command: F) -> F:
    """The options every command that reads input records shares."""
    decorators = [
        click.argument("inputs", nargs=-1, required=True, metavar="INPUT..."),
        click.option(
            "--input-format",
            type=INPUT_FORMAT_CHOICE,
            help="Format of '-' (standard input); overrides file extensions when given.",
        ),
        click.option(
            "--record-type",
            type=RECORD_TYPE_CHOICE,
            help="Record type of CSV rows that have no record_type column.",
        ),
        click.option(
            "--timezone",
            callback=_zone,
            metavar="ZONE",
            help="IANA zone (e.g. Europe/Berlin) for date-times written without a UTC offset; "
            "without it such times are rejected.",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def _input_options(
    input_format: str | None,
    record_type: str | None,
    timezone: ZoneInfo | None,
    deidentify_key: str | None = None,
) -> InputOptions:
    from migrainefhir.input.deidentify import Deidentifier, load_key
    from migrainefhir.input.intake import InputOptions
    from migrainefhir.input.model import ParseOptions
    from migrainefhir.input.readers import ReadOptions

    deidentifier = Deidentifier(load_key(deidentify_key)) if deidentify_key else None
    return InputOptions(
        read=ReadOptions(input_format=input_format, record_type=record_type),
        parse=ParseOptions(timezone=timezone),
        deidentifier=deidentifier,
    )


def _print_report(report: Report, output_format: str, accepted_word: str) -> None:
    """A report on stdout: text for people, JSON for scripts."""
    from migrainefhir.report import render_json, render_text

    if output_format == "json":
        click.echo(json.dumps(render_json(report), indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(report, accepted_word), nl=False)


def _fail(error: MigraineFhirError) -> NoReturn:
    click.echo(f"migrainefhir: error: {error}", err=True)
    sys.exit(error.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="migrainefhir")
def cli() -> None:
    """Carry migraine headache diaries and ketamine therapy sessions into FHIR R4.

    Exit codes: 0 ok, 1 problems found (records rejected or validation errors),
    2 usage error, 3 input unreadable or output unwritable.
    """


@cli.command()
@input_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report for people (text) or scripts (json).",
)
def check(
    inputs: tuple[str, ...],
    input_format: str | None,
    record_type: str | None,
    timezone: ZoneInfo | None,
    output_format: str,
) -> None:
    """Check input records against the contract and report every problem.

    INPUT is a JSON, NDJSON/JSONL or CSV file, a folder of them, or '-' for standard input.
    """
    from migrainefhir.pipeline import check as run_check

    try:
        report = run_check(inputs, _input_options(input_format, record_type, timezone))
    except MigraineFhirError as error:
        _fail(error)
    _print_report(report, output_format, "accepted")
    sys.exit(ExitCode.OK if report.counts.total_rejected == 0 else ExitCode.PROBLEMS)


# Config-file setting -> the command parameter it sets.
CONFIG_KEYS = {
    "source_system": "source_system",
    "timezone": "timezone",
    "format": "output_format",
    "write_mode": "write_mode",
    "max_entries": "max_entries",
    "max_file_resources": "max_file_resources",
    "gzip": "gzip",
    "base_url": "base_url",
    "jobs": "jobs",
    "validation": "validation",
    "engine": "engine",
    "spark_master": "spark_master",
}


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Read a site's config file (TOML, table [migrainefhir]) into the command's defaults.

    Options given on the command line still win over the file.
    """
    if value is None:
        return None
    import tomllib

    try:
        with open(value, "rb") as handle:
            table = tomllib.load(handle).get("migrainefhir", {})
    except OSError as exc:
        raise click.BadParameter(f"cannot read {value}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{value} is not valid TOML: {exc}") from exc
    unknown = sorted(set(table) - CONFIG_KEYS.keys())
    if unknown:
        raise click.BadParameter(f"{value}: unknown setting(s) {', '.join(unknown)}")
    settings = {CONFIG_KEYS[key]: setting for key, setting in table.items()}
    ctx.default_map = {**(ctx.default_map or {}), **settings}
    return value


def config_option(command: F) -> F:
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        callback=_load_config,
        is_eager=True,
        expose_value=False,
        help="TOML file with a [migrainefhir] table of the settings a site sets once "
        "(source_system, timezone, format, ...).",
    )(command)


def source_options(command: F) -> F:
    """--source-system and --timestamp: what every command that writes FHIR needs."""
    command = click.option(
        "--timestamp",
        metavar="TIME",
        help="Export time (default SOURCE_DATE_EPOCH, else now): Provenance.recorded, "
        "Bundle.timestamp, manifest transactionTime.",
    )(command)
    return click.option(
        "--source-system",
        default=DEFAULT_SOURCE_SYSTEM,
        show_default=True,
        callback=_source_system,
        help="Absolute URI of the source system's id space (business identifiers, "
        "meta.source, ids).",
    )(command)


# An absolute URI with a scheme, and nothing our identifiers and meta.source append to it
# (a path segment, a '#fragment') could make ambiguous: no spaces, query or fragment.
_SOURCE_SYSTEM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s?#]+$")


def _source_system(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _SOURCE_SYSTEM.match(value):
        raise click.BadParameter(
            f"{value!r} is not an absolute URI without spaces, query or fragment "
            "(e.g. https://clinic.example.org/fhir/ids)"
        )
    return value


def _aware_datetime(value: str, option: str) -> datetime:
    """An ISO 8601 date-time with a UTC offset ('Z' accepted), or a usage error naming option."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise click.BadParameter(f"{option} needs a UTC offset (e.g. 2026-01-31T02:00:00Z)")
    return moment


def _export_time(value: str | None) -> datetime:
    """--timestamp, else SOURCE_DATE_EPOCH (reproducible builds), else the clock; UTC seconds."""
    if value is not None:
        return _aware_datetime(value, "--timestamp").astimezone(UTC)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except ValueError as exc:
            raise click.BadParameter(f"SOURCE_DATE_EPOCH={epoch!r} is not whole seconds") from exc
    return datetime.now(UTC).replace(microsecond=0)


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    return None if value is None else _aware_datetime(value, "--since")


@cli.command()
@config_option
@input_options
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["ndjson", "transaction", "collection"]),
    default="ndjson",
    show_default=True,
    help="ndjson: Bulk Data files + manifest; transaction: one idempotent transaction Bundle "
    "per patient; collection: one collection Bundle per patient.",
)
@source_options
@click.option(
    "--write-mode",
    type=click.Choice(["put", "conditional"]),
    default="put",
    show_default=True,
    help="transaction only: PUT by deterministic id, or conditional create/update on the "
    "business identifiers (see README).",
)
@click.option("--max-entries", type=int, default=500, show_default=True, help="Entries per Bundle.")
@click.option(
    "--max-file-resources",
    type=int,
    default=100_000,
    show_default=True,
    help="ndjson only: resources per file before it is split.",
)
@click.option("--gzip", is_flag=True, help="ndjson only: write .ndjson.gz files.")
@click.option("--base-url", help="ndjson only: make manifest urls absolute under this URL.")
@click.option("--since", callback=_since, metavar="TIME", help="Only records recorded at or after.")
@click.option("--strict", is_flag=True, help="Write nothing if any record is rejected.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="the machine's cores",
    help="Worker processes; the output is the same bytes for any number.",
)
@click.option(
    "--validation",
    type=click.Choice(["full", "fast"]),
    default="full",
    show_default=True,
    help="full: every layer on every resource; fast: profile schemas, rules and integrity on "
    "every resource, fhir.resources on the first resource of each profiled shape per worker "
    "(see README).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="local: this machine's worker processes (--jobs); spark: the tasks of an Apache Spark "
    'job (needs migrainefhir[spark] and Java 17+; same output; README "Running on Spark").',
)
@click.option(
    "--spark-master",
    metavar="URL",
    help="--engine spark only: the master URL [default: the running session's or "
    "spark-submit's, else local[*]].",
)
@click.option(
    "--deidentify",
    is_flag=True,
    help="Research export: keyed pseudonyms for ids, one secret date shift per patient, "
    "names, EHR identifiers and free text dropped (docs/deidentify.md). Needs --key-file.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="--deidentify only: the secret key (a file only its owner can read).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary on stderr.")
def export(
    inputs: tuple[str, ...],
    input_format: str | None,
    record_type: str | None,
    timezone: ZoneInfo | None,
    out: str,
    output_format: str,
    source_system: str,
    write_mode: str,
    max_entries: int,
    max_file_resources: int,
    gzip: bool,
    base_url: str | None,
    since: datetime | None,
    timestamp: str | None,
    strict: bool,
    jobs: int,
    validation: str,
    engine: str,
    spark_master: str | None,
    deidentify: bool,
    key_file: str | None,
    quiet: bool,
) -> None:
    """Export input records as validated FHIR R4: Bundles or Bulk Data NDJSON.

    Every resource is validated before it is written; rejected records go, verbatim and with
    their problems, to OUT/rejects.ndjson. OUT/summary.json reconciles read = exported +
    rejected (+ skipped with --since).
    """
    from migrainefhir.pipeline import ExportOptions
    from migrainefhir.pipeline import export as run_export
    from migrainefhir.report import summary_lines

    if deidentify != (key_file is not None):
        raise click.UsageError("--deidentify and --key-file go together")
    progress = _progress_printer(quiet)
    try:
        options = ExportOptions(
            out=Path(out),
            export_time=_export_time(timestamp),
            format=output_format,
            source_system=source_system,
            since=since,
            write_mode=write_mode,
            max_entries=max_entries,
            max_file_resources=max_file_resources,
            gzip=gzip,
            strict=strict,
            base_url=base_url,
            jobs=jobs,
            validation=validation,
            engine=engine,
            spark_master=spark_master,
        )
        inputs_read = _input_options(input_format, record_type, timezone, key_file)
        result = run_export(inputs, inputs_read, options, progress)
    except MigraineFhirError as error:
        _fail(error)
    if not quiet:
        _clear_progress(progress)
        for line in summary_lines(result.report.counts, "exported"):
            click.echo(line, err=True)
        if not result.written:
            click.echo(f"--strict: records were rejected, nothing written to {out}", err=True)
    failed = result.report.counts.total_rejected or result.report.error_count
    sys.exit(ExitCode.PROBLEMS if failed else ExitCode.OK)


@cli.command()
@config_option
@input_options
@source_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="File for the collection Bundle ('-' is standard output).",
)
def convert(
    inputs: tuple[str, ...],
    input_format: str | None,
    record_type: str | None,
    timezone: ZoneInfo | None,
    source_system: str,
    timestamp: str | None,
    output: str,
) -> None:
    """Convert input records to one FHIR R4 collection Bundle (for review; use export for
    batches). Problems go to standard error; rejected records are left out of the Bundle.
    """
    from migrainefhir import __version__ as version
    from migrainefhir.convert import ConvertContext
    from migrainefhir.export.output import write_file_atomically
    from migrainefhir.pipeline import convert as run_convert
    from migrainefhir.report import render_text

    ctx = ConvertContext(source_system, _export_time(timestamp), version)
    try:
        bundle, report = run_convert(
            inputs, _input_options(input_format, record_type, timezone), ctx
        )
        data = json.dumps(bundle, indent=2, ensure_ascii=False).encode() + b"\n"
        if output == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            write_file_atomically(Path(output), data)
    except MigraineFhirError as error:
        _fail(error)
    click.echo(render_text(report, "converted"), err=True, nl=False)
    failed = report.counts.total_rejected or report.error_count
    sys.exit(ExitCode.PROBLEMS if failed else ExitCode.OK)


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "outcome"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts, outcome for a FHIR R4 OperationOutcome.",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="CODE",
    help="Suppress a problem code (repeatable), e.g. an accepted warning.",
)
@click.option(
    "--validation",
    type=click.Choice(["full", "fast"]),
    default="full",
    show_default=True,
    help="full: every layer on every resource; fast: fhir.resources on one resource of "
    "each shape that claims a migrainefhir profile, every other layer on all.",
)
def validate(
    paths: tuple[str, ...], output_format: str, ignore: tuple[str, ...], validation: str
) -> None:
    """Validate FHIR R4 Bundles, resources, NDJSON files and Bulk Data export folders.

    Works on files migrainefhir did not write too (the profile layer then applies only to
    resources claiming our profiles). Exit 0 when no errors, 1 when errors.
    """
    from migrainefhir.pipeline import validate_paths

    try:
        report = validate_paths(paths, frozenset(ignore), mode=validation)  # type: ignore[arg-type]
    except MigraineFhirError as error:
        _fail(error)
    if output_format == "outcome":
        click.echo(json.dumps(report.operation_outcome(), indent=2, ensure_ascii=False))
    else:
        _print_report(report, output_format, "valid")
    sys.exit(ExitCode.OK if report.ok else ExitCode.PROBLEMS)


def _progress_printer(quiet: bool) -> Callable[[int], None] | None:
    """A record counter on stderr, only on a terminal (a nightly job's log stays clean)."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(count: int) -> None:
        if count % 1000 == 0:
            click.echo(f"\r{count} records", err=True, nl=False)

    return show


def _clear_progress(progress: Callable[[int], None] | None) -> None:
    if progress is not None:
        click.echo("\r\033[K", err=True, nl=False)


def main() -> None:
    cli()
