"""Snapshot generation: a profile's differential applied to the R4 base definition.

As the FHIR rules for snapshots describe (profiling.html#snapshot): the snapshot starts as the
base type's snapshot; an element the differential constrains inside a datatype (or an
extension slice) has its parent unfolded first, with the datatype's own elements re-rooted
under it (ids and paths; `base` keeps the path, min and max of the definition it comes from); a
slice is a copy of the sliced element with `sliceName` and the id `path:sliceName`, placed after
the sliced element's subtree, its children unfolded from its type; the differential's
constraints then apply: cardinality, types, fixed values, slicing, bindings and invariants
(added to the base's, never replacing them).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from migrainefhir.conformance import base

_KEEP = frozenset({"id", "path"})


class Snapshot:
    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.elements = base.elements(type_name)

    def _position(self, element_id: str) -> int | None:
        for index, element in enumerate(self.elements):
            if element["id"] == element_id:
                return index
        return None

    def _subtree_end(self, index: int) -> int:
        """The index after the element at `index`, its children and its slices."""
        root = self.elements[index]["id"]
        end = index + 1
        while end < len(self.elements):
            element_id = self.elements[end]["id"]
            if not (element_id.startswith(root + ".") or element_id.startswith(root + ":")):
                break
            end += 1
        return end

    def ensure(self, element_id: str) -> int:
        """The index of the element, unfolding its parents or making its slice as needed."""
        found = self._position(element_id)
        if found is not None:
            return found
        parent_id, last = element_id.rsplit(".", 1)
        if ":" in last:
            name, slice_name = last.split(":", 1)
            sliced = self.ensure(f"{parent_id}.{name}")
            entry = copy.deepcopy(self.elements[sliced])
            entry.pop("slicing", None)
            entry["id"] = element_id
            entry["sliceName"] = slice_name
            position = self._subtree_end(sliced)
            self.elements.insert(position, entry)
            if {kind["code"] for kind in entry.get("type", [])} == {"BackboneElement"}:
                # a backbone slice holds the backbone's own elements, re-rooted under it
                stem = entry["path"] + "."
                children = [
                    child
                    for child in base.elements(self.type_name)
                    if child["path"].startswith(stem)
                ]
                for child in children:
                    child["id"] = element_id + child["id"][len(entry["path"]) :]
                self.elements[position + 1 : position + 1] = children
            return position
        parent = self.ensure(parent_id)
        if not self._has_children(parent):
            self._unfold(parent)
        found = self._position(element_id)
        if found is None:
            raise ValueError(f"{element_id}: no such element in the base definitions")
        return found

    def _has_children(self, index: int) -> bool:
        following = index + 1
        return following < len(self.elements) and self.elements[following]["id"].startswith(
            self.elements[index]["id"] + "."
        )

    def _unfold(self, index: int) -> None:
        parent = self.elements[index]
        codes = {entry["code"] for entry in parent.get("type", [])}
        if len(codes) != 1:
            raise ValueError(f"{parent['id']}: cannot unfold an element of types {sorted(codes)}")
        (code,) = codes
        children = base.elements(code)[1:]
        for child in children:
            child["id"] = parent["id"] + child["id"][len(code) :]
            child["path"] = parent["path"] + child["path"][len(code) :]
        self.elements[index + 1 : index + 1] = children

    def apply(self, differential: Mapping[str, Any]) -> None:
        index = self.ensure(differential["id"])
        element = self.elements[index]
        for key, value in differential.items():
            if key in _KEEP:
                continue
            if key == "constraint":
                element["constraint"] = [*element.get("constraint", []), *copy.deepcopy(value)]
            elif key == "type" and element.get("type"):
                kept = {entry["code"]: entry for entry in element["type"]}
                element["type"] = [{**kept.get(entry["code"], {}), **entry} for entry in value]
            else:
                element[key] = copy.deepcopy(value)


def _depth(element_id: str) -> int:
    return element_id.count(".") * 2 + element_id.count(":")


def generate(
    type_name: str, differential: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(snapshot, differential in snapshot order) for a profile on `type_name`."""
    snapshot = Snapshot(type_name)
    for element in sorted(differential, key=lambda entry: _depth(entry["id"])):
        snapshot.apply(element)
    order = {element["id"]: index for index, element in enumerate(snapshot.elements)}
    ordered = sorted(differential, key=lambda entry: order[entry["id"]])
    return snapshot.elements, ordered
