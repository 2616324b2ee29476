"""Fixtures shared by test modules (pytest finds this file itself)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fhir_server import FhirServer


@pytest.fixture(scope="module")
def running() -> Iterator[FhirServer]:
    """The test FHIR server (Medplum's router on 127.0.0.1), one per test module."""
    with FhirServer() as server:
        yield server


@pytest.fixture
def server(running: FhirServer) -> FhirServer:
    """The module's FHIR server, emptied and without faults for each test."""
    running.reset()
    return running
