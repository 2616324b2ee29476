"""The push journal: DIR/push-journal.ndjson, one line per Bundle sent.

Each line: `{"file", "sha256", "server", "outcome", "time", "entries"}`, written and flushed to
disk once the server's answer was checked (`outcome` "accepted" or "refused"). A re-run skips a
Bundle the same server accepted with the same bytes; a Bundle whose line is missing (the push
was killed while it was on its way) is sent again, which changes nothing on the server: every
entry is an update by id or identifier, a conditional create or a delete. A last line cut off
by a crash is ignored. The journal is private (0600), like the export it sits in.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

JOURNAL_NAME = "push-journal.ndjson"


class Journal:
    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL_NAME
        self._accepted: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._handle: IO[bytes] | None = None
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with self.path.open("rb") as handle:
            for line in handle:
                try:
                    item = json.loads(line)
                    key = (item["file"], item["sha256"], item["server"])
                    outcome = item["outcome"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut off when a push was killed
                if outcome == "accepted":
                    self._accepted.add(key)
                else:
                    self._accepted.discard(key)

    def accepted(self, file: str, sha256: str, server: str) -> bool:
        return (file, sha256, server) in self._accepted

    def record(self, file: str, sha256: str, server: str, outcome: str, entries: int) -> None:
        item = {
            "file": file,
            "sha256": sha256,
            "server": server,
            "outcome": outcome,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "entries": entries,
        }
        line = json.dumps(item, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            if self._handle is None:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
                self._handle = os.fdopen(fd, "ab")
                if _ends_unfinished(fd):
                    line = b"\n" + line  # close a line cut off by a kill, keep ours whole
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            if outcome == "accepted":
                self._accepted.add((file, sha256, server))

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


def _ends_unfinished(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
