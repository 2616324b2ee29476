"""The HTML report in a real browser: headless Chromium loads every page from disk with the
network cut off, and the page must make no request but its own file, log no console error,
carry no script, show its charts (inline SVG with a title) and render to a non-blank
screenshot; every link must lead to a page of the report.

Needs Debian's `chromium` (.ci/run installs it); skipped when it is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from tests.browser import CHROMIUM, Browser, PageLoad, non_white_share

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed: apt-get install chromium (.ci/run does)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped examples, plus a patient with a session and no diary (empty charts)."""
    tmp = tmp_path_factory.mktemp("browser")
    extra = tmp / "session-only.ndjson"
    session = {
        "record_type": "ketamine-session",
        "session_id": "S-ONLY",
        "patient_id": "no-diary",
        "start": "2026-01-05T09:00:00+01:00",
        "route": "intranasal",
        "product": "esketamine",
        "dose_mg": 56,
    }
    extra.write_text(json.dumps(session) + "\n", encoding="utf-8")
    out = tmp / "report"
    args = ["report", str(REPO / "examples" / "ndjson"), str(extra), "--out", str(out)]
    args += ["--source-system", "https://clinic.example.org/fhir/ids"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def loads(report: Path) -> Iterator[dict[str, PageLoad]]:
    pages = [report / "index.html", *sorted((report / "patients").glob("*.html"))]
    browser = Browser()
    try:
        yield {str(page.relative_to(report)): browser.load(page) for page in pages}
    finally:
        browser.close()


def test_every_page_is_loaded(loads: dict[str, PageLoad]) -> None:
    assert sorted(loads) == [
        "index.html",
        "patients/no-diary.html",
        "patients/pt-000001.html",
        "patients/pt-000002.html",
        "patients/pt-000003.html",
        "patients/pt-000004.html",
    ]


def test_no_page_makes_a_request_but_for_its_own_file(loads: dict[str, PageLoad]) -> None:
    for load in loads.values():
        assert load.requests == [load.url]


def test_no_page_logs_a_console_error(loads: dict[str, PageLoad]) -> None:
    assert {name: load.console_errors for name, load in loads.items() if load.console_errors} == {}


def test_pages_have_no_script_and_charts_with_titles_and_tables(loads: dict[str, PageLoad]) -> None:
    for name, load in loads.items():
        facts = load.facts
        assert facts["scripts"] == 0, name
        assert facts["svgs"] == facts["svgTitles"] >= 1, name
        assert facts["tables"] >= 1, name
        assert facts["title"].startswith("Headache outcomes"), name


def test_every_link_leads_to_a_page_of_the_report(report: Path, loads: dict[str, PageLoad]) -> None:
    for load in loads.values():
        for link in load.facts["links"]:
            parsed = urlparse(link)
            assert parsed.scheme == "file", link
            target = Path(unquote(parsed.path))
            assert target.is_file() and report.resolve() in target.resolve().parents, link


def test_every_screenshot_shows_the_page(loads: dict[str, PageLoad]) -> None:
    for name, load in loads.items():
        share = non_white_share(load.screenshot)
        assert 0.01 < share < 0.6, (name, share)  # ink, but not a black or error page


def test_the_harness_sees_a_request_leaving_the_page_and_a_console_error(tmp_path: Path) -> None:
    """The checks above would pass on a harness that sees nothing: this page has both."""
    page = tmp_path / "leaky.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body><p>x</p>"
        '<img src="https://cdn.example.org/chart.png" alt="">'
        '<script>console.error("boom")</script></body></html>',
        encoding="utf-8",
    )
    browser = Browser()
    try:
        load = browser.load(page)
    finally:
        browser.close()
    assert "https://cdn.example.org/chart.png" in load.requests
    assert any("boom" in error for error in load.console_errors)
    assert load.facts["scripts"] == 1
