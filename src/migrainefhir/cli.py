"""The command line: options -> one library call (pipeline.py) -> rendered report -> exit code.

Only this module imports click. Heavy modules (fhir.resources, schema compilation) are imported
inside the commands, so `migrainefhir --help` and `--version` stay fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
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
    now: datetime | None = None,
) -> InputOptions:
    from migrainefhir.input.deidentify import Deidentifier, load_key
    from migrainefhir.input.intake import InputOptions
    from migrainefhir.input.model import ParseOptions
    from migrainefhir.input.readers import ReadOptions

    deidentifier = Deidentifier(load_key(deidentify_key)) if deidentify_key else None
    return InputOptions(
        read=ReadOptions(input_format=input_format, record_type=record_type),
        parse=ParseOptions(timezone=timezone, now=now or _export_time(None)),
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


class _Stopped(BaseException):
    """SIGINT or SIGTERM arrived: unwind (every `finally` and staging clean-up runs), then exit
    with 128 + the signal's number. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stops_cleanly_on_signals(command: F) -> F:
    """The command, run under _stopped_cleanly_by_signals."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _stopped_cleanly_by_signals():
            return command(*args, **kwargs)

    return run  # type: ignore[return-value]


@contextlib.contextmanager
def _stopped_cleanly_by_signals() -> Iterator[None]:
    """SIGTERM (kill, systemd stop, timeout) cleans up exactly as Ctrl-C does: the staging
    folder and partial files are removed, the previous output stays, the workers are stopped;
    the exit code is 130 for SIGINT and 143 for SIGTERM. A second signal does not interrupt
    the clean-up (SIGKILL still ends the process at once)."""

    def stop(signum: int, _frame: object) -> None:
        for each in (signal.SIGINT, signal.SIGTERM):
            signal.signal(each, signal.SIG_IGN)
        raise _Stopped(signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a library caller's thread)
        return
    previous = {each: signal.signal(each, stop) for each in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stopped as stopped:
        name = signal.Signals(stopped.signum).name
        click.echo(
            f"\nmigrainefhir: stopped by {name}: nothing written, the previous output is intact",
            err=True,
        )
        sys.exit(128 + stopped.signum)
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


class _Commands(click.Group):
    """The command group. An exception no command expected (a bug) ends the run with exit
    code 3 and one line naming the exception type and the place in migrainefhir, never with a
    traceback or exit code 1, which means "records rejected". The exception's own text is not
    shown: it may quote input data."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # the last line of defence, by design
            click.echo(f"migrainefhir: internal error: {_where(exc)}", err=True)
            sys.exit(ExitCode.UNREADABLE)


def _where(exc: BaseException) -> str:
    """`TypeError at export/parts.py:169`: the innermost frame inside the package."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    package = str(Path(__file__).parent)
    ours = [frame for frame in frames if frame.filename.startswith(package)]
    place = ""
    if ours:
        relative = os.path.relpath(ours[-1].filename, package)
        place = f" at {relative}:{ours[-1].lineno}"
    return (
        f"{type(exc).__name__}{place}; nothing was written (a previous output is intact); "
        "please report this as a bug"
    )


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="migrainefhir")
def cli() -> None:
    """Carry migraine headache diaries and ketamine therapy sessions into FHIR R4.

    Exit codes: 0 ok, 1 problems found (records rejected or validation errors),
    2 usage error, 3 input unreadable, output unwritable or an internal error, 130 stopped by
    SIGINT (Ctrl-C), 143 stopped by SIGTERM (after cleaning up).
    """


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
# The settings each command takes from the file; a site's file holds export settings too, which
# check and convert leave alone (check's --format is its report format, not the export's).
COMMAND_CONFIG_KEYS = {
    "export": frozenset(CONFIG_KEYS),
    "convert": frozenset({"source_system", "timezone"}),
    "check": frozenset({"timezone"}),
    "report": frozenset({"source_system", "timezone", "validation"}),
}
CONFIG_TABLE = "migrainefhir"


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Read a site's config file (TOML, table [migrainefhir]) into the command's defaults.

    Options given on the command line still win over the file. A file without the table, or
    with a setting we do not know, is a usage error: a setting must never be silently ignored.
    """
    if value is None:
        return None
    import tomllib

    try:
        with open(value, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {value}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{value} is not valid TOML: {exc}") from exc
    table = document.get(CONFIG_TABLE)
    if not isinstance(table, dict):
        raise click.BadParameter(
            f"{value} has no [{CONFIG_TABLE}] table; put the settings under a line [{CONFIG_TABLE}]"
        )
    unknown = sorted(set(table) - CONFIG_KEYS.keys())
    if unknown:
        raise click.BadParameter(f"{value}: unknown setting(s) {', '.join(unknown)}")
    wanted = COMMAND_CONFIG_KEYS.get(ctx.info_name or "", frozenset(CONFIG_KEYS))
    settings = {CONFIG_KEYS[key]: setting for key, setting in table.items() if key in wanted}
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
        "(source_system, timezone, format, ...); check and convert use its timezone (and "
        "convert its source_system).",
    )(command)


def _given(ctx: click.Context, name: str) -> bool:
    """Whether the option was given on the command line (not a default, nor the config file:
    a site's file may hold settings for every format)."""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def _reject_no_effect(ctx: click.Context, output_format: str) -> None:
    """An option given on the command line that has no effect with the chosen format is a
    usage error (exit 2): a user who asked for it would otherwise be silently ignored."""
    only = {
        "gzip": ("--gzip", ("ndjson",)),
        "base_url": ("--base-url", ("ndjson",)),
        "max_file_resources": ("--max-file-resources", ("ndjson",)),
        "write_mode": ("--write-mode", ("transaction",)),
        "max_entries": ("--max-entries", ("transaction", "collection")),
    }
    for name, (option, formats) in only.items():
        if _given(ctx, name) and output_format not in formats:
            raise click.UsageError(
                f"{option} has no effect with --format {output_format} "
                f"(it applies to --format {' and '.join(formats)} only)"
            )


def _location(given: str | None) -> tuple[Path | None, str | None]:
    """A folder option as (local path, None) or, for a URI only Spark reaches (hdfs://,
    s3a://, ...), (None, the URI); a file: URI is its local path."""
    from migrainefhir.export.hadoop import is_hadoop_uri, local_path

    if given is None:
        return None, None
    if is_hadoop_uri(given):
        return None, given
    return Path(local_path(given)), None


def _reject_record_type_without_csv(
    ctx: click.Context, inputs: tuple[str, ...], input_format: str | None
) -> None:
    """--record-type applies to CSV files only: given for inputs none of which is CSV, it is a
    usage error."""
    if not _given(ctx, "record_type"):
        return
    if input_format == "csv" or any(_may_be_csv(name, input_format) for name in inputs):
        return
    raise click.UsageError(
        "--record-type has no effect: it applies to CSV input only, and no input is a .csv "
        "file (or '-' with --input-format csv)"
    )


def _may_be_csv(name: str, input_format: str | None) -> bool:
    if name == "-":
        return input_format == "csv"
    path = Path(name)
    if path.is_dir():
        try:
            return any(child.suffix.lower() == ".csv" for child in path.iterdir())
        except OSError:
            return True  # unreadable: the reader reports it
    return path.suffix.lower() == ".csv" or not path.exists()


@cli.command()
@config_option
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

    _reject_record_type_without_csv(click.get_current_context(), inputs, input_format)
    try:
        report = run_check(inputs, _input_options(input_format, record_type, timezone))
    except MigraineFhirError as error:
        _fail(error)
    _print_report(report, output_format, "accepted")
    sys.exit(ExitCode.OK if report.counts.total_rejected == 0 else ExitCode.PROBLEMS)


def source_options(command: F, *, required: bool = False) -> F:
    """--source-system and --timestamp: what every command that writes FHIR needs. With
    required (export), there is no default source system: the command's body calls
    require_source_system."""
    command = click.option(
        "--timestamp",
        metavar="TIME",
        help="Export time (default SOURCE_DATE_EPOCH, else now): Provenance.recorded, "
        "Bundle.timestamp, manifest transactionTime.",
    )(command)
    if required:
        return click.option(
            "--source-system",
            default=None,
            metavar="URI",
            callback=_source_system,
            help="Absolute URI of the source system's id space (business identifiers, "
            "meta.source, ids). Required, here or as source_system in --config: it seeds "
            "every resource id.",
        )(command)
    return click.option(
        "--source-system",
        default=DEFAULT_SOURCE_SYSTEM,
        show_default=True,
        callback=_source_system,
        help="Absolute URI of the source system's id space (business identifiers, "
        "meta.source, ids).",
    )(command)


def required_source_options(command: F) -> F:
    return source_options(command, required=True)


def require_source_system(value: str | None, command: str = "export") -> str:
    """The source system of an export (or a report of one), or a usage error that says why
    there is no default."""
    if value is None:
        raise click.UsageError(
            f"{command} needs --source-system URI (or source_system in the --config file): the "
            "source system's URI seeds every resource id and business identifier, so two "
            "sites exporting under one shared default would write the same Patient ids and a "
            "server would merge their patients. Use a URI your organisation owns, e.g. "
            "https://clinic.example.org/fhir/ids."
        )
    return value


# An absolute URI with a scheme, and nothing our identifiers and meta.source append to it
# (a path segment, a '#fragment') could make ambiguous: no spaces, query or fragment.
_SOURCE_SYSTEM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s?#]+$")


def _source_system(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
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
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Output folder (with --engine spark also a file system URI).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["ndjson", "transaction", "collection"]),
    default="ndjson",
    show_default=True,
    help="ndjson: Bulk Data files + manifest; transaction: one idempotent transaction Bundle "
    "per patient; collection: one collection Bundle per patient.",
)
@required_source_options
@click.option(
    "--write-mode",
    type=click.Choice(["put", "conditional"]),
    default="put",
    show_default=True,
    help="transaction only: PUT by deterministic id, or conditional create/update on the "
    "business identifiers (see README).",
)
@click.option(
    "--max-entries",
    type=int,
    default=500,
    show_default=True,
    help="transaction and collection only: the most entries a Bundle holds (its Patient included).",
)
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
@click.option(
    "--previous",
    type=click.Path(file_okay=False),
    metavar="OLD_DIR",
    help="transaction and ndjson: the previous export of this source (may be --out itself); "
    "what a record exported again no longer has is deleted (docs/mapping.md).",
)
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
    "job (needs migrainefhir[spark] and Java 17+; same output; inputs, --out and --previous "
    'may then be URIs such as hdfs://, s3a://, abfss://; README "Running on Spark").',
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
@click.option(
    "--with-outcomes",
    is_flag=True,
    help="Add the headache outcome measures per 28-day window as Observations "
    "(docs/outcomes.md); not with --since.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary on stderr.")
@_stops_cleanly_on_signals
def export(
    inputs: tuple[str, ...],
    input_format: str | None,
    record_type: str | None,
    timezone: ZoneInfo | None,
    out: str,
    output_format: str,
    source_system: str | None,
    write_mode: str,
    max_entries: int,
    max_file_resources: int,
    gzip: bool,
    base_url: str | None,
    since: datetime | None,
    previous: str | None,
    timestamp: str | None,
    strict: bool,
    jobs: int,
    validation: str,
    engine: str,
    spark_master: str | None,
    deidentify: bool,
    key_file: str | None,
    with_outcomes: bool,
    quiet: bool,
) -> None:
    """Export input records as validated FHIR R4: Bundles or Bulk Data NDJSON.

    Every resource is validated before it is written; rejected records go, verbatim and with
    their problems, to OUT/rejects.ndjson. OUT/summary.json reconciles read = exported +
    rejected (+ skipped with --since).
    """
    from migrainefhir.export.hadoop import local_path
    from migrainefhir.pipeline import ExportOptions
    from migrainefhir.pipeline import export as run_export
    from migrainefhir.report import export_report_lines

    source_system = require_source_system(source_system)
    if deidentify != (key_file is not None):
        raise click.UsageError("--deidentify and --key-file go together")
    ctx = click.get_current_context()
    _reject_no_effect(ctx, output_format)
    _reject_record_type_without_csv(ctx, inputs, input_format)
    progress = _progress_printer(quiet)
    try:
        inputs = tuple(local_path(each) for each in inputs)
        out_path, out_uri = _location(out)
        previous_path, previous_uri = _location(previous)
        options = ExportOptions(
            out=out_path or Path(out),  # with out_uri, the export picks a private local folder
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
            previous=previous_path,
            engine=engine,
            spark_master=spark_master,
            out_uri=out_uri,
            previous_uri=previous_uri,
        )
        inputs_read = _input_options(
            input_format, record_type, timezone, key_file, options.export_time
        )
        result = run_export(inputs, inputs_read, options, progress, with_outcomes)
    except MigraineFhirError as error:
        _fail(error)
    if not quiet:
        _clear_progress(progress)
        for line in export_report_lines(result, out):
            click.echo(line, err=True)
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
@_stops_cleanly_on_signals
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
    from migrainefhir.export.target import check_file_is_no_input
    from migrainefhir.pipeline import convert as run_convert
    from migrainefhir.report import render_text

    _reject_record_type_without_csv(click.get_current_context(), inputs, input_format)
    ctx = ConvertContext(source_system, _export_time(timestamp), version)
    try:
        if output != "-":
            check_file_is_no_input(Path(output), inputs)
        bundle, report = run_convert(
            inputs, _input_options(input_format, record_type, timezone, None, ctx.export_time), ctx
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
@config_option
@input_options
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option(
    "--source-system",
    callback=_source_system,
    help="Absolute URI of the source system's id space, as export is given it (required, or "
    "source_system in --config): the Observations' ids and Patient references are made from it.",
)
@click.option(
    "--validation",
    type=click.Choice(["full", "fast"]),
    default="full",
    show_default=True,
    help="How the metric Observations are validated before they are written (as export).",
)
@click.option(
    "--deidentify",
    is_flag=True,
    help="Pseudonyms and shifted dates only, as export --deidentify (docs/deidentify.md). "
    "Needs --key-file.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="--deidentify only: the secret key (a file only its owner can read).",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
def report(
    inputs: tuple[str, ...],
    input_format: str | None,
    record_type: str | None,
    timezone: ZoneInfo | None,
    out: str,
    source_system: str | None,
    validation: str,
    deidentify: bool,
    key_file: str | None,
    quiet: bool,
) -> None:
    """Headache outcome measures per 28-day window, and a report clinicians can read.

    Writes OUT/metrics.csv (one row per patient and window), OUT/outcomes.csv (baseline
    against follow-up per treated patient), OUT/metrics.ndjson (the measures as validated
    FHIR R4 Observations) and OUT/index.html with one page per patient under OUT/patients/
    (self-contained: open it in any browser). Definitions: docs/outcomes.md.
    """
    from migrainefhir.pipeline import ReportOptions
    from migrainefhir.pipeline import report as run_report
    from migrainefhir.report import render_text

    if deidentify != (key_file is not None):
        raise click.UsageError("--deidentify and --key-file go together")
    source_system = require_source_system(source_system, "report")
    try:
        options = ReportOptions(
            out=Path(out),
            source_system=source_system,
            validation=validation,
        )
        inputs_read = _input_options(input_format, record_type, timezone, key_file)
        result = run_report(inputs, inputs_read, options)
    except MigraineFhirError as error:
        _fail(error)
    if not quiet:
        click.echo(render_text(result.report, "used"), err=True, nl=False)
        click.echo(
            f"report: {result.patients} patients, {result.windows} windows, "
            f"{result.outcomes} treated patients, {result.observations} Observations in {out}",
            err=True,
        )
    failed = result.report.counts.total_rejected or result.report.error_count
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
@click.option(
    "--allow-extension-domain",
    "extension_domains",
    multiple=True,
    metavar="DOMAIN",
    help="Accept extensions whose URL starts with DOMAIN (repeatable), e.g. "
    "http://hospital.example/fhir/: their definitions cannot be known offline.",
)
def validate(
    paths: tuple[str, ...],
    output_format: str,
    ignore: tuple[str, ...],
    validation: str,
    extension_domains: tuple[str, ...],
) -> None:
    """Validate FHIR R4 Bundles, resources, NDJSON files and Bulk Data export folders.

    Works on files migrainefhir did not write too (the profile layer then applies only to
    resources claiming our profiles). Exit 0 when no errors, 1 when errors.
    """
    from migrainefhir.pipeline import validate_paths
    from migrainefhir.problem_codes import all_codes

    unknown = sorted(set(ignore) - all_codes())
    if unknown:
        raise click.BadParameter(
            f"unknown problem code(s): {', '.join(unknown)} (see docs/problem-codes.md)",
            param_hint="--ignore",
        )
    try:
        report = validate_paths(
            paths,
            frozenset(ignore),
            mode=validation,  # type: ignore[arg-type]
            extension_domains=extension_domains,
        )
    except MigraineFhirError as error:
        _fail(error)
    if output_format == "outcome":
        click.echo(json.dumps(report.operation_outcome(), indent=2, ensure_ascii=False))
    else:
        _print_report(report, output_format, "valid")
    sys.exit(ExitCode.OK if report.ok else ExitCode.PROBLEMS)


@cli.command()
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--server",
    required=True,
    metavar="URL",
    help="The FHIR server's base URL (https; plain http only to a loopback address unless "
    "--allow-http).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Patients sent at once (each patient's Bundles always go in order).",
)
@click.option(
    "--force", is_flag=True, help="Send again the Bundles the journal says this server accepted."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read the server's /metadata (FHIR 4.0.x, transaction) and say what would be sent.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="A bearer token in a file only its owner can read.",
)
@click.option(
    "--client-id",
    metavar="ID",
    help="SMART Backend Services: the client id (with --private-key).",
)
@click.option(
    "--private-key",
    type=click.Path(dir_okay=False),
    help="SMART Backend Services: the client's PEM private key (RSA for RS384, EC P-384 for "
    "ES384), a file only its owner can read.",
)
@click.option(
    "--scope",
    default="system/*.cruds",
    show_default=True,
    help="SMART Backend Services: the scopes asked for.",
)
@click.option("--key-id", help="SMART: the kid of the key (default: its RFC 7638 thumbprint).")
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False),
    help="PEM file of the certificate authorities to trust (TLS is always verified).",
)
@click.option("--allow-http", is_flag=True, help="Allow plain http to a non-loopback address.")
@click.option("--proxy", metavar="URL", help="HTTP(S) proxy (none is taken from the environment).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for an answer to one request.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Attempts of one request before the push stops (exit 3).",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds of the first backoff (doubled each attempt, with jitter) when the server "
    "gives no Retry-After.",
)
@click.option(
    "--max-retry-time",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds one request may spend in retries before the push stops (exit 3).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary on stderr.")
def push(
    folder: str,
    server: str,
    jobs: int,
    force: bool,
    dry_run: bool,
    token_file: str | None,
    client_id: str | None,
    private_key: str | None,
    scope: str,
    key_id: str | None,
    ca_bundle: str | None,
    allow_http: bool,
    proxy: str | None,
    timeout: float,
    max_attempts: int,
    retry_delay: float,
    max_retry_time: float,
    quiet: bool,
) -> None:
    """Send a transaction export (export --format transaction) to a FHIR server.

    Each patient's Bundles go in order, --jobs patients at a time; every entry's status is
    checked. Retries 408, 429, 5xx, time-outs and broken connections with backoff (honouring
    Retry-After). DIR/push-journal.ndjson records each Bundle the server accepted, so a re-run
    skips them (--force sends them again); DIR/push-summary.json says what happened. Tokens
    and keys are never printed.

    Only transaction exports are pushed (an NDJSON export is for the server's bulk $import);
    with export --previous, its DELETE Bundles go too.

    Exit codes: 0 every Bundle accepted, 1 some refused (their OperationOutcomes are in
    push-summary.json), 2 usage, 3 server unreachable, authentication failed or interrupted
    (run again to resume).
    """
    from migrainefhir.deliver.push import PushOptions
    from migrainefhir.deliver.push import push as run_push
    from migrainefhir.deliver.transport import RetryPolicy, TransportOptions, check_server_url

    if (client_id is None) != (private_key is None):
        raise click.UsageError("--client-id and --private-key go together")
    if token_file is not None and client_id is not None:
        raise click.UsageError("--token-file or SMART (--client-id, --private-key), not both")
    progress = _push_progress(quiet)
    try:
        base = check_server_url(server, allow_http)
        if proxy is not None and not proxy.startswith(("http://", "https://")):
            raise click.BadParameter("an http:// or https:// URL", param_hint="--proxy")
        credentials = _push_credentials(
            token_file, client_id, private_key, scope, key_id, allow_http
        )
        options = PushOptions(
            folder=Path(folder),
            server=base,
            jobs=jobs,
            force=force,
            dry_run=dry_run,
            policy=RetryPolicy(
                max_attempts=max_attempts, base_delay=retry_delay, max_time=max_retry_time
            ),
            transport=TransportOptions(timeout=timeout, ca_bundle=ca_bundle, proxy=proxy),
        )
        retry = None if quiet else (lambda text: click.echo(f"\r\033[K{text}", err=True))
        result = run_push(options, credentials, progress, retry)
    except MigraineFhirError as error:
        _clear_progress(progress)
        _fail(error)
    except KeyboardInterrupt:
        click.echo("\nmigrainefhir: interrupted; run the same push again to resume", err=True)
        sys.exit(ExitCode.UNREADABLE)
    if not quiet:
        _clear_progress(progress)
        for line in _push_summary_lines(result):
            click.echo(line, err=True)
    sys.exit(ExitCode.PROBLEMS if result.refused else ExitCode.OK)


def _push_credentials(
    token_file: str | None,
    client_id: str | None,
    private_key: str | None,
    scope: str,
    key_id: str | None,
    allow_http: bool,
) -> Any:
    from migrainefhir.deliver.credentials import BearerToken, SmartBackend
    from migrainefhir.deliver.transport import NoCredentials

    if token_file is not None:
        return BearerToken(token_file)
    if client_id is not None and private_key is not None:
        return SmartBackend(client_id, private_key, scope, key_id, allow_http)
    return NoCredentials()


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
def package(out: str) -> None:
    """Write the FHIR NPM package of migrainefhir's profiles (docs/conformance.md).

    OUT/package/ holds package.json, .index.json, a StructureDefinition (differential and
    snapshot) per profile and extension, the CodeSystems, ValueSets, a CapabilityStatement, an
    ImplementationGuide and example/; OUT/<name>-<version>.tgz is the package for FHIR tools.
    """
    from migrainefhir.pipeline import package as write_package

    try:
        written = write_package(Path(out))
    except OSError as error:
        click.echo(f"error: cannot write the package to {out}: {error.strerror}", err=True)
        sys.exit(ExitCode.UNREADABLE)
    click.echo(f"wrote {len(written)} files; package: {written[-1]}", err=True)
    sys.exit(ExitCode.OK)


def _push_progress(quiet: bool) -> Callable[[Any], None] | None:
    """Bundles and entries done of the total, rate and time left, on a terminal only."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(progress: Any) -> None:
        click.echo(f"\r\033[K{progress.line()}", err=True, nl=False)

    return show


def _push_summary_lines(result: Any) -> list[str]:
    """The closing summary: counts, and where each refused Bundle failed (status, issue code,
    FHIRPath; never the server's free text, which may quote data)."""
    if result.dry_run:
        to_send = result.bundles - result.skipped
        return [
            f"dry run: {result.server} speaks FHIR {result.fhir_version} and takes transactions",
            f"would send {to_send} of {result.bundles} Bundles ({result.skipped} already "
            f"accepted by this server, per the journal), {result.entries:,} entries in all",
        ]
    lines = [
        f"pushed to {result.server}: {result.bundles} Bundles, {result.accepted} accepted, "
        f"{result.skipped} skipped (accepted before), {result.refused} refused; "
        f"{result.entries_sent:,} entries sent and accepted in {result.seconds:.1f} s",
    ]
    for refusal in result.refusals:
        if not refusal.entries:
            lines.append(f"refused: {refusal.file}: {refusal.status}{_issue(refusal.outcome)}")
        for entry in refusal.entries:
            lines.append(
                f"refused: {refusal.file} entry {entry['index']} ({entry['method']} "
                f"{entry['type']}): {entry['status']}{_issue(entry['outcome'])}"
            )
    if result.refusals:
        lines.append("the server's OperationOutcomes are in push-summary.json")
    return lines


def _issue(outcome: Any) -> str:
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    if not isinstance(issues, list) or not issues or not isinstance(issues[0], dict):
        return ""
    first = issues[0]
    where = first.get("expression") or first.get("location") or []
    at = f" at {', '.join(map(str, where))}" if isinstance(where, list) and where else ""
    return f" ({first.get('code', '?')}{at})"


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False), metavar="DIR")
def clean(folder: str) -> None:
    """Remove what killed exports left beside and in DIR (DIR is an --out, or the folder
    that holds the --out folders).

    An export builds its output in a staging folder `.NAME.staging-PID` beside --out; a run
    killed with SIGKILL (or a power cut) cannot remove it. This removes such folders of runs
    that are no longer running, puts back an output folder whose swap was cut short, and
    removes unheld lock files. It never touches anything else (a folder named like staging
    that the tool did not write is reported and kept). Each removal is listed on stdout.

    Exit codes: 0 done (also when there was nothing to remove), 2 DIR is not a folder,
    3 something of the tool's could not be removed (named on stderr).
    """
    from migrainefhir.export.output import clean_leftovers

    here = Path(folder).resolve()
    found = [clean_leftovers(here)]
    if here.parent != here:
        found.append(clean_leftovers(here.parent))
    failed = False
    for cleaned in found:
        for path in cleaned.removed:
            click.echo(f"removed {path}")
        for path in cleaned.restored:
            click.echo(f"restored {path} (its swap was cut short)")
        for path, why in cleaned.left:
            click.echo(f"migrainefhir: kept {path}: {why}", err=True)
            failed = failed or why == "could not be removed"
    if not any(c.removed or c.restored for c in found):
        click.echo("nothing to clean")
    sys.exit(ExitCode.UNREADABLE if failed else ExitCode.OK)


def _progress_printer(quiet: bool) -> Progress | None:
    """A progress line on stderr, only on a terminal (a nightly job's log stays clean)."""
    if quiet or not sys.stderr.isatty():
        return None
    return Progress(lambda text: click.echo(text, err=True, nl=False))


class Progress:
    """`12000 of ~100000 records (12%), about 1m 20s left`: records merged of the total the
    shard planner counted (input lines, an upper bound; unknown with JSON files), and the time
    left at the rate so far. Redrawn at most every `every` seconds."""

    def __init__(
        self,
        write: Callable[[str], None],
        clock: Callable[[], float] | None = None,
        every: float = 0.5,
    ) -> None:
        import time

        self.write = write
        self.clock = clock or time.monotonic
        self.every = every
        self.started = self.clock()
        self.shown = -every

    def __call__(self, done: int, total: int | None) -> None:
        now = self.clock()
        if now - self.shown < self.every:
            return
        self.shown = now
        self.write("\r\033[K" + progress_text(done, total, now - self.started))


def progress_text(done: int, total: int | None, elapsed: float) -> str:
    if total is None or total <= 0 or done >= total:
        return f"{done} records"
    text = f"{done} of ~{total} records ({100 * done // total}%)"
    if done and elapsed > 0:
        left = elapsed / done * (total - done)
        text += f", about {_duration(left)} left"
    return text


def _duration(seconds: float) -> str:
    whole = max(1, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _clear_progress(progress: object | None) -> None:
    """Erase the progress line, if one was drawn (the export's or the push's)."""
    if progress is not None:
        click.echo("\r\033[K", err=True, nl=False)


def main() -> None:
    cli()
