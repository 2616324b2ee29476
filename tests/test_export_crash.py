"""A nightly export killed midway (SIGKILL) leaves the previous output intact; a rerun completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_args import TEST_SOURCE_SYSTEM

ARGS = ["--timestamp", "2026-07-01T00:00:00Z", "--quiet", "--source-system", TEST_SOURCE_SYSTEM]


def write_input(path: Path, entries: int) -> None:
    with path.open("w") as handle:
        for n in range(entries):
            day = 1 + n % 28
            record = {
                "record_type": "diary-entry",
                "entry_id": f"e{n}",
                "patient_id": f"p{n % 7}",
                "date": f"2026-02-{day:02d}",
                "headache": True,
                "onset": f"2026-02-{day:02d}T08:00:00+01:00",
                "severity": 5,
                "symptoms": ["nausea", "photophobia"],
            }
            handle.write(json.dumps(record) + "\n")


def export_command(source: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "migrainefhir", "export", str(source), "--out", str(out), *ARGS]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_sigkill_midway_keeps_the_previous_output_and_a_rerun_completes(tmp_path: Path) -> None:
    small, large = tmp_path / "small.ndjson", tmp_path / "large.ndjson"
    write_input(small, 5)
    write_input(large, 1500)
    out = tmp_path / "out"
    subprocess.run(export_command(small, out), check=True)
    previous = snapshot(out)

    process = subprocess.Popen(export_command(large, out))
    staging = tmp_path / f".out.staging-{process.pid}"
    deadline = time.monotonic() + 60
    while not any(staging.glob("*.ndjson")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let it write for a while
    assert process.poll() is None, "the export finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    assert snapshot(out) == previous
    subprocess.run(export_command(large, out), check=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records_read"] == 1500
    assert summary["records_exported"] == 1500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["large.ndjson", "out", "small.ndjson"]
