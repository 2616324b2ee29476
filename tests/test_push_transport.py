"""The pieces of push that need no server: Retry-After, backoff, the address rule, progress,
the journal (deliver/transport.py, deliver/journal.py, deliver/push.py)."""

from __future__ import annotations

import random
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrainefhir.deliver.journal import JOURNAL_NAME, Journal
from migrainefhir.deliver.push import Progress
from migrainefhir.deliver.transport import RetryPolicy, check_server_url, retry_after
from migrainefhir.errors import UsageError

NOW = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Wed, 01 Jul 2026 12:00:30 GMT", 30.0),
        ("Wed, 01 Jul 2026 11:59:00 GMT", 0.0),  # in the past: at once
        ("soon", None),
        ("-3", None),
        (None, None),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after(header, NOW) == seconds


def test_backoff_doubles_with_jitter_and_stays_under_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=6.0)
    rng = random.Random(7)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (3, 6), (3, 6)], start=1):
        waits = {policy.backoff(attempt, rng) for _ in range(50)}
        assert all(low <= wait <= high for wait in waits)
        assert len(waits) > 1  # jittered: clients do not retry in step


@pytest.mark.parametrize(
    "url",
    ["https://fhir.example.org/r4", "http://127.0.0.1:8080/fhir", "http://localhost/fhir",
     "http://[::1]:8080/fhir", "http://127.5.0.1/fhir"],
)  # fmt: skip
def test_https_anywhere_and_http_to_loopback_are_accepted(url: str) -> None:
    assert check_server_url(url + "/", allow_http=False) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://fhir.example.org/r4", "unencrypted"),
        ("http://10.0.0.5/r4", "unencrypted"),
        ("ftp://fhir.example.org", "not an http(s) URL"),
        ("https://user:pw@fhir.example.org", "no query, fragment or credentials"),
        ("https://fhir.example.org/r4?x=1", "no query, fragment or credentials"),
    ],
)
def test_other_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_server_url(url, allow_http=False)


def test_allow_http_lets_plain_http_through() -> None:
    assert check_server_url("http://fhir.internal/r4", allow_http=True) == "http://fhir.internal/r4"


def test_progress_says_done_of_total_rate_and_time_left() -> None:
    line = Progress(3, 10, 1500, 6000, 5.0).line()
    assert line == "3/10 Bundles, 1,500/6,000 entries, 300/s, about 15 s left"
    assert Progress(0, 10, 0, 6000, 0.0).line() == "0/10 Bundles, 0/6,000 entries, 0/s"


def test_the_journal_remembers_accepted_bundles_by_bytes_and_server(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.record("bundles/a.json", "aa", "https://s1", "accepted", 5)
    journal.record("bundles/b.json", "bb", "https://s1", "refused", 5)
    journal.close()
    assert stat.S_IMODE((tmp_path / JOURNAL_NAME).stat().st_mode) == 0o600
    with (tmp_path / JOURNAL_NAME).open("ab") as handle:
        handle.write(b'{"file": "bundles/c.json", "sha2')  # cut off by a kill
    again = Journal(tmp_path)
    assert again.accepted("bundles/a.json", "aa", "https://s1")
    assert not again.accepted("bundles/a.json", "changed", "https://s1")
    assert not again.accepted("bundles/a.json", "aa", "https://s2")
    assert not again.accepted("bundles/b.json", "bb", "https://s1")
    again.record("bundles/c.json", "cc", "https://s1", "accepted", 5)  # after the cut-off line
    again.close()
    assert Journal(tmp_path).accepted("bundles/c.json", "cc", "https://s1")
