"""Processes of a run under test: its children, and waiting for processes to be gone (Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
    return int(stat.rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> set[int]:
    """Every live process whose parent is `pid`."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _parent_of(int(entry)) == pid:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until_gone(pids: set[int], seconds: float) -> set[int]:
    """The pids still alive after waiting up to `seconds` for them all to end."""
    deadline = time.monotonic() + seconds
    left = {pid for pid in pids if alive(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = {pid for pid in left if alive(pid)}
    return left


def wait_for_children(pid: int, count: int, seconds: float) -> set[int]:
    """The process's children once there are `count` of them (or what there is after
    `seconds`)."""
    deadline = time.monotonic() + seconds
    found = children_of(pid)
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.02)
        found = children_of(pid)
    return found


# A CLI run in a process of its own that reports its peak RSS (ru_maxrss, KiB) on stderr.
_MEASURE = """
import resource, sys
from migrainefhir.cli import cli
try:
    cli(sys.argv[1:])
finally:
    sys.stderr.write(f"\\nPEAK-KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
"""


def peak_mib(args: list[str], exit_code: int) -> int:
    """The peak RSS, in MiB, of the command line `args` run in a process of its own (which
    must end with `exit_code`)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert done.returncode == exit_code, done.stderr[-2000:]
    return int(done.stderr.rsplit("PEAK-KIB ", 1)[1].split()[0]) // 1024
