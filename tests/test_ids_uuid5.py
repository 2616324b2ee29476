"""ids.resource_id computes uuid5 by hand (for speed): it must equal the standard library's."""

import uuid

from hypothesis import given
from hypothesis import strategies as st

from migrainefhir.ids import ID_NAMESPACE, resource_id

_SEPARATOR = "\x1f"


@given(st.text(), st.text(), st.text(), st.text())
def test_resource_id_is_exactly_uuid5_of_the_joined_name(
    source: str, kind: str, record_id: str, role: str
) -> None:
    try:
        name = _SEPARATOR.join((source, kind, record_id, role))
        expected = str(uuid.uuid5(ID_NAMESPACE, name))
    except UnicodeEncodeError:  # a lone surrogate: both refuse it
        return
    assert resource_id(source, kind, record_id, role) == expected


def test_a_known_id_never_changes() -> None:
    source = "https://example.org/migrainefhir/source"
    assert (
        resource_id(source, "patient", "pt-000001", "primary")
        == "c658df96-1388-595c-abdf-cf3582981917"
    )
