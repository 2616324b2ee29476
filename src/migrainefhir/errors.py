"""Fatal errors (the run cannot continue) and the exit-code table.

Bad *data* is never an exception: it becomes Problems (problems.py). These exceptions are for
an input that cannot be read at all, or a usage/configuration mistake.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes of every command (README "Exit codes")."""

    OK = 0
    PROBLEMS = 1  # some records rejected, or validation errors found
    USAGE = 2  # bad option, bad configuration
    # an input could not be read at all, or output could not be written (disk full,
    # permissions, a worker process killed)
    UNREADABLE = 3
    # stopped by a signal, after cleaning up (no staging left, the previous output intact):
    # 128 + the signal's number, as shells report it
    INTERRUPTED = 130  # SIGINT (Ctrl-C)
    TERMINATED = 143  # SIGTERM (kill, systemd stop, timeout)


class MigraineFhirError(Exception):
    """Base of the fatal errors; carries the exit code the CLI should use."""

    exit_code: ExitCode = ExitCode.UNREADABLE


class InputUnreadable(MigraineFhirError):
    """An input path is missing, not a file, not readable, or of an unknown format."""

    exit_code = ExitCode.UNREADABLE


class OutputUnwritable(MigraineFhirError):
    """The output could not be written (disk full, permissions); the previous output is intact."""

    exit_code = ExitCode.UNREADABLE


class WorkerLost(MigraineFhirError):
    """A worker process of a parallel export died (killed, out of memory); nothing was written."""

    exit_code = ExitCode.UNREADABLE


class UsageError(MigraineFhirError):
    """A bad option value or configuration file."""

    exit_code = ExitCode.USAGE


class OutputBusy(MigraineFhirError):
    """Another export is writing to the same output folder (it holds the folder's lock)."""

    exit_code = ExitCode.UNREADABLE


class TemporaryUnwritable(OutputUnwritable):
    """A temporary file (in TMPDIR) could not be created or written (disk full, permissions)."""
