"""`migrainefhir package`: the FHIR NPM package of our profiles, and its independent proof.

The StructureDefinitions are generated from the profile JSON Schemas the validator runs; Medplum's
validator (@medplum/core 4.5.2, tools/conformance/medplum-validate.js) given only the package's
StructureDefinitions must accept and reject exactly what our profile layer accepts and rejects:
on every resource the examples' export writes, on the validator corpus, and on resources broken
on purpose (a profile-fixed code changed, a required element removed).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir import __version__, codes
from migrainefhir.cli import cli
from migrainefhir.problem_codes import REGISTERING_MODULES
from migrainefhir.problems import PROBLEM_CODES
from migrainefhir.validate import profiles
from migrainefhir.validate.outcome import PROBLEM_CODE_SYSTEM
from tests.fhir_server import FhirServer, requires_fhir_server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "ndjson"
CORPUS = ROOT / "tests" / "data" / "validator"
MEDPLUM = ROOT / "tools" / "conformance" / "medplum-validate.js"
NODE_MODULES = ROOT / "tools" / "fhir-server" / "node_modules" / "@medplum" / "core"
TARBALL = f"migrainefhir.fhir.r4-{__version__}.tgz"

requires_medplum = pytest.mark.skipif(
    not NODE_MODULES.is_dir(), reason="run `bash tools/fhir-server/install.sh` (Medplum)"
)


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    result = CliRunner().invoke(cli, ["package", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _resources(package_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        path.name: _read(path)
        for path in sorted((package_dir / "package").glob("*.json"))
        if path.name != "package.json"
    }


def test_the_manifest_names_the_package_its_fhir_version_and_dependencies(
    package_dir: Path,
) -> None:
    manifest = _read(package_dir / "package" / "package.json")
    assert manifest["name"] == "migrainefhir.fhir.r4"
    assert manifest["version"] == __version__
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["canonical"] == "https://migrainefhir.org/fhir"
    assert manifest["dependencies"] == {
        "hl7.fhir.r4.core": "4.0.1",
        "hl7.fhir.uv.symptoms": "1.0.0",
    }


def test_the_index_lists_every_resource_file_of_the_package(package_dir: Path) -> None:
    index = _read(package_dir / "package" / ".index.json")
    assert index["index-version"] == 1
    found = _resources(package_dir)
    assert [entry["filename"] for entry in index["files"]] == sorted(
        name for name in found if name != ".index.json"
    )
    for entry in index["files"]:
        resource = found[entry["filename"]]
        assert (entry["resourceType"], entry["id"]) == (resource["resourceType"], resource["id"])
        assert entry.get("url") == resource.get("url")


def test_every_profile_the_export_claims_has_a_structure_definition_with_both_views(
    package_dir: Path,
) -> None:
    found = _resources(package_dir)
    for url in profiles.profile_schemas():
        definition = found[f"StructureDefinition-{url.rsplit('/', 1)[1]}.json"]
        assert definition["url"] == url
        assert definition["fhirVersion"] == "4.0.1"
        assert definition["derivation"] == "constraint"
        assert definition["snapshot"]["element"][0]["id"] == definition["type"]
        assert definition["differential"]["element"]


def test_every_project_extension_ships_with_a_snapshot(package_dir: Path) -> None:
    found = _resources(package_dir)
    for url in codes.PROJECT_EXTENSIONS:
        definition = found[f"StructureDefinition-{url.rsplit('/', 1)[1]}.json"]
        by_id = {element["id"]: element for element in definition["snapshot"]["element"]}
        assert by_id["Extension.url"]["fixedUri"] == url
        assert by_id["Extension"]["base"] == {"path": "Extension", "min": 0, "max": "*"}


def test_a_snapshot_keeps_the_base_and_places_the_extension_slice(package_dir: Path) -> None:
    definition = _resources(package_dir)["StructureDefinition-ketamine-session-procedure.json"]
    by_id = {element["id"]: element for element in definition["snapshot"]["element"]}
    sliced = by_id["Procedure.extension"]
    assert sliced["slicing"]["discriminator"] == [{"type": "value", "path": "url"}]
    entry = by_id["Procedure.extension:course-session-number"]
    assert entry["sliceName"] == "course-session-number"
    assert (entry["min"], entry["max"]) == (0, "1")  # optional, at most once
    assert entry["base"] == {"path": "DomainResource.extension", "min": 0, "max": "*"}
    assert by_id["Procedure.extension:course-session-number.url"]["fixedUri"] == (
        codes.SESSION_NUMBER_EXTENSION
    )
    assert by_id["Procedure.code.coding.code"]["fixedCode"] == "18629005"
    assert by_id["Procedure.code.coding.code"]["base"]["path"] == "Coding.code"
    assert by_id["Procedure.bodySite"]["max"] == "0"  # not written: prohibited
    assert by_id["Procedure.subject"]["min"] == 1


def test_every_project_code_system_and_the_problem_codes_are_in_the_package(
    package_dir: Path,
) -> None:
    found = _resources(package_dir)
    urls = {resource.get("url") for resource in found.values()}
    for system in codes.PROJECT_CODE_SYSTEMS:
        assert {system.url, system.value_set_url} <= urls
    problem_codes = next(r for r in found.values() if r.get("url") == PROBLEM_CODE_SYSTEM)
    for module in REGISTERING_MODULES:
        __import__(module)
    assert {concept["code"] for concept in problem_codes["concept"]} == set(PROBLEM_CODES)


def test_the_capability_statement_asks_for_transaction_and_conditional_update(
    package_dir: Path,
) -> None:
    statement = _resources(package_dir)["CapabilityStatement-migrainefhir-receiving-server.json"]
    assert statement["kind"] == "requirements"
    [rest] = statement["rest"]
    assert rest["interaction"] == [{"code": "transaction"}]
    for resource in rest["resource"]:
        assert resource["updateCreate"] is True
        written_by_id = resource["type"] in ("AdverseEvent", "Provenance")
        assert resource["conditionalUpdate"] is not written_by_id
    by_type = {r["type"]: r.get("searchParam", []) for r in rest["resource"]}
    assert by_type["Observation"] == [
        {
            "name": "identifier",
            "definition": "http://hl7.org/fhir/SearchParameter/clinical-identifier",
            "type": "token",
        }
    ]
    assert by_type["AdverseEvent"] == []  # no identifier search in R4: always PUT by id
    [patient] = [r for r in rest["resource"] if r["type"] == "Patient"]
    assert {"code": "create"} in patient["interaction"]  # stubs and MRN matches: ifNoneExist
    assert patient["conditionalCreate"] is True
    assert by_type["Provenance"] == []  # no identifier in R4: always PUT by id
    claimed = {url for r in rest["resource"] for url in r["supportedProfile"]}
    assert claimed == set(profiles.profile_schemas())


def test_the_implementation_guide_lists_every_resource_and_example_of_the_package(
    package_dir: Path,
) -> None:
    found = _resources(package_dir)
    guide = found["ImplementationGuide-migrainefhir.json"]
    listed = {
        entry["reference"]["reference"]
        for entry in guide["definition"]["resource"]
        if entry.get("exampleBoolean") is False
    }
    expected = {
        f"{r['resourceType']}/{r['id']}"
        for name, r in found.items()
        if name not in (".index.json", "ImplementationGuide-migrainefhir.json")
    }
    assert listed == expected
    examples = {
        entry["reference"]["reference"]: entry.get("exampleCanonical")
        for entry in guide["definition"]["resource"]
        if entry.get("exampleBoolean") is not False
    }
    for path in (package_dir / "package" / "example").glob("*-*.json"):
        resource = _read(path)
        profile = examples[f"{resource['resourceType']}/{resource['id']}"]
        assert profile is None or profile in resource["meta"]["profile"]


def test_the_examples_cover_every_profile(package_dir: Path) -> None:
    claimed = set()
    for path in (package_dir / "package" / "example").glob("*-*.json"):
        claimed.update(_read(path)["meta"]["profile"])
    assert set(profiles.profile_schemas()) <= claimed


def test_the_tarball_holds_the_package_folder_byte_for_byte_and_is_deterministic(
    package_dir: Path, tmp_path: Path
) -> None:
    data = (package_dir / TARBALL).read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        members = archive.getmembers()
        names = [member.name for member in members]
        assert names == sorted(names)
        assert all(member.name.startswith("package/") for member in members)
        for member in members:
            extracted = archive.extractfile(member)
            assert extracted is not None
            assert extracted.read() == (package_dir / member.name).read_bytes()
    again = CliRunner().invoke(cli, ["package", "--out", str(tmp_path)])
    assert again.exit_code == 0
    assert (tmp_path / TARBALL).read_bytes() == data


# -- the independent proof: Medplum's validator given the package ---------------------------


def _medplum(package_dir: Path, items: list[tuple[dict[str, Any], str]]) -> list[bool]:
    lines = [
        json.dumps({"n": n, "resource": resource, "profile": profile})
        for n, (resource, profile) in enumerate(items)
    ]
    done = subprocess.run(
        ["node", str(MEDPLUM), str(package_dir / "package")],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [result["n"] for result in results] == list(range(len(items)))
    return [bool(result["valid"]) for result in results]


def _ours(items: list[tuple[dict[str, Any], str]]) -> list[bool]:
    return [profiles.checker(profile).is_valid(resource) for resource, profile in items]


def _claims(resources: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    shipped = profiles.profile_schemas()
    return [
        (resource, profile)
        for resource in resources
        for profile in resource.get("meta", {}).get("profile", [])
        if profile in shipped
    ]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("export")
    command = [sys.executable, "-m", "migrainefhir", "export", str(EXAMPLES), "--out", str(out)]
    command += ["--timestamp", "2026-07-01T00:00:00Z", "--quiet", "--validation", "fast"]
    command += ["--source-system", "https://clinic.example.org/fhir/ids"]
    command += ["--with-outcomes"]  # the outcome window Observations are exported shapes too
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    resources = []
    for path in sorted(out.glob("*.ndjson")):
        if path.name != "OperationOutcome.ndjson":
            resources.extend(json.loads(line) for line in path.read_text().splitlines())
    return resources


def _corpus() -> list[dict[str, Any]]:
    found = []
    for path in sorted(CORPUS.glob("*/*.json")):
        if path.name == "expected.json":
            continue
        document = _read(path)
        if document.get("resourceType") == "Bundle":
            found.extend(entry["resource"] for entry in document.get("entry", []))
        else:
            found.append(document)
    return found


def _shape(node: Any, path: str = "") -> frozenset[str]:
    """A resource's element paths, with the value of every code and system."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("code", "system") and isinstance(value, str):
                found.add(f"{path}.{key}={value}")
            found |= _shape(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            found |= _shape(item, path)
    else:
        found.add(path)
    return frozenset(found)


def _per_shape(resources: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """At most `count` resources of each shape (profiles + paths + codes): the examples'
    ~4,700 resources have ~330 shapes, and Medplum takes ~20 ms a resource."""
    seen: dict[tuple[Any, ...], int] = {}
    kept = []
    for resource in resources:
        key = (tuple(resource.get("meta", {}).get("profile", [])), _shape(resource))
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= count:
            kept.append(resource)
    return kept


@requires_medplum
def test_medplum_accepts_every_shape_of_exported_resource_against_its_profiles(
    package_dir: Path, exported: list[dict[str, Any]]
) -> None:
    """Every shape of resource the export writes (two of each)."""
    items = _claims(_per_shape(exported, 2))
    assert len({profile for _, profile in items}) == len(profiles.profile_schemas())
    verdicts = _medplum(package_dir, items)
    pairs = zip(items, verdicts, strict=True)
    rejected = [f"{r['resourceType']}/{r['id']} {p}" for (r, p), ok in pairs if not ok]
    assert rejected == []


@requires_medplum
def test_medplum_and_our_validator_agree_on_the_validator_corpus(package_dir: Path) -> None:
    items = _claims(_corpus())
    theirs, ours = _medplum(package_dir, items), _ours(items)
    disagree = [
        f"{r['resourceType']}/{r.get('id')} {p}: ours {o}, medplum {t}"
        for (r, p), o, t in zip(items, ours, theirs, strict=True)
        if o != t
    ]
    assert disagree == []
    assert not all(ours)  # the corpus breaks profiles too


def _broken(resource: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Copies of a resource with one profile rule broken: a fixed code, a required element."""
    out = []
    for key in ("code", "medicationCodeableConcept", "valueCodeableConcept"):
        if key in resource and resource[key].get("coding"):
            broken = copy.deepcopy(resource)
            broken[key]["coding"][0]["code"] = "not-the-profile-code"
            out.append((f"{key} code", broken))
    for key in ("subject", "patient", "status", "identifier", "target"):
        if key in resource:
            broken = copy.deepcopy(resource)
            del broken[key]
            out.append((f"no {key}", broken))
    return out


@requires_medplum
def test_medplum_rejects_what_our_profiles_reject_when_a_fixed_code_or_required_element_breaks(
    package_dir: Path,
) -> None:
    samples = [_read(path) for path in sorted((package_dir / "package" / "example").glob("*-*"))]
    items = []
    for resource, profile in _claims(samples):
        items.extend((broken, profile) for _, broken in _broken(resource))
    assert len(items) >= 2 * len(profiles.profile_schemas())
    assert _ours(items) == [False] * len(items)
    assert _medplum(package_dir, items) == [False] * len(items)


@requires_medplum
def test_medplum_and_our_validator_agree_on_every_example_broken_one_rule_at_a_time(
    package_dir: Path,
) -> None:
    """Each example with each element removed, each array doubled and an id added inside each
    element: both validators give the same verdict (one source of truth, beyond fixed codes)."""
    samples = [_read(path) for path in sorted((package_dir / "package" / "example").glob("*-*"))]
    items = []
    for resource, profile in _claims(samples):
        for key in sorted(resource):
            if key in ("resourceType", "id", "meta"):
                continue
            without = copy.deepcopy(resource)
            del without[key]
            items.append((without, profile))
            if isinstance(resource[key], list):
                doubled = copy.deepcopy(resource)
                doubled[key] = [*doubled[key], *copy.deepcopy(doubled[key])]
                items.append((doubled, profile))
            first = resource[key][0] if isinstance(resource[key], list) else resource[key]
            for inner in sorted(first) if isinstance(first, dict) else ():
                # an element id (R4 allows it everywhere, our profiles nowhere), one level down
                if isinstance(first[inner], dict):
                    with_id = copy.deepcopy(resource)
                    target = with_id[key][0] if isinstance(with_id[key], list) else with_id[key]
                    target[inner]["id"] = "extra"
                    items.append((with_id, profile))
    theirs, ours = _medplum(package_dir, items), _ours(items)
    disagree = [
        f"{r['resourceType']} {p.rsplit('/', 1)[1]} keys {sorted(r)}: ours {o}, medplum {t}"
        for (r, p), o, t in zip(items, ours, theirs, strict=True)
        if o != t
    ]
    assert disagree == []


@requires_medplum
@requires_fhir_server
def test_resources_read_back_from_a_server_still_conform_to_their_profiles(
    package_dir: Path,
) -> None:
    """A server adds meta.versionId and meta.lastUpdated (and may add tags): the profiles
    constrain the clinical content, not that metadata."""
    samples = [_read(path) for path in sorted((package_dir / "package" / "example").glob("*-*"))]
    read_back = []
    with FhirServer() as server:
        for resource in samples:
            where = f"{resource['resourceType']}/{resource['id']}"
            assert server.put(where, resource).status in (200, 201)
            read_back.append(server.get(where).json())
    assert all("versionId" in resource["meta"] for resource in read_back)
    tagged = copy.deepcopy(read_back[0])
    tagged["meta"]["tag"] = [{"system": "https://ehr.example.org/tags", "code": "imported"}]
    items = _claims([*read_back, tagged])
    assert _ours(items) == [True] * len(items)
    assert _medplum(package_dir, items) == [True] * len(items)


def test_every_differential_element_is_in_the_snapshot_as_it_says(package_dir: Path) -> None:
    for name, definition in _resources(package_dir).items():
        if definition.get("resourceType") != "StructureDefinition":
            continue
        snapshot = {element["id"]: element for element in definition["snapshot"]["element"]}
        for element in definition["differential"]["element"]:
            found = snapshot[element["id"]]
            for key, value in element.items():
                if key == "constraint":
                    assert all(entry in found["constraint"] for entry in value), name
                elif key == "type":
                    assert [t["code"] for t in found["type"]] == [t["code"] for t in value]
                else:
                    assert found[key] == value, (name, element["id"], key)
            assert "base" in found, (name, element["id"])


def _compiled(properties: dict[str, Any], **schema: Any) -> dict[str, Any]:
    from migrainefhir.conformance.differential import compile_schema

    document = {"properties": {"resourceType": {"const": "Observation"}, **properties}}
    return compile_schema({**document, "$defs": {}, **schema})


def test_a_const_on_a_required_primitive_is_a_fixed_value_and_min_1() -> None:
    said = _compiled({"status": {"const": "final"}}, required=["status"])["Observation.status"]
    assert (said.fixed, said.min) == (("Code", "final"), 1)


def test_a_closed_object_prohibits_every_element_it_does_not_name() -> None:
    compiled = _compiled({"status": {"const": "final"}}, additionalProperties=False)
    assert compiled["Observation.note"].max == "0"
    assert "Observation.status" in compiled and compiled["Observation.status"].max is None


def test_an_enum_is_an_invariant_on_its_element() -> None:
    said = _compiled({"status": {"enum": ["final", "amended"]}})["Observation.status"]
    [invariant] = said.invariants
    assert invariant["expression"] == "($this = 'final' or $this = 'amended')"


def test_a_schema_keyword_the_compiler_cannot_say_in_fhir_is_refused() -> None:
    from migrainefhir.conformance.differential import SchemaNotExpressible

    with pytest.raises(SchemaNotExpressible, match="format"):
        _compiled({"status": {"format": "email"}})


def test_the_blood_pressure_components_are_ordered_slices_by_their_code(
    package_dir: Path,
) -> None:
    definition = _resources(package_dir)["StructureDefinition-session-vital-sign.json"]
    by_id = {element["id"]: element for element in definition["snapshot"]["element"]}
    assert by_id["Observation.component"]["slicing"] == {
        "discriminator": [{"type": "pattern", "path": "code"}],
        "ordered": True,
        "rules": "closed",
    }
    for name, code in (("systolic", "8480-6"), ("diastolic", "8462-4")):
        entry = by_id[f"Observation.component:{name}"]
        assert (entry["sliceName"], entry["min"], entry["max"]) == (name, 0, "1")
        assert by_id[f"Observation.component:{name}.code"]["patternCodeableConcept"] == {
            "coding": [{"system": "http://loinc.org", "code": code}]
        }
        assert by_id[f"Observation.component:{name}.value[x].code"]["fixedCode"] == "mm[Hg]"


@requires_medplum
def test_medplum_and_ours_reject_a_blood_pressure_with_its_components_broken(
    package_dir: Path,
) -> None:
    samples = [_read(path) for path in sorted((package_dir / "package" / "example").glob("*-*"))]
    [panel] = [
        r for r in samples if r.get("code", {}).get("coding", [{}])[0].get("code") == "85354-9"
    ]
    swapped, twice, unit = copy.deepcopy(panel), copy.deepcopy(panel), copy.deepcopy(panel)
    swapped["component"].reverse()
    twice["component"][1] = copy.deepcopy(twice["component"][0])
    unit["component"][0]["valueQuantity"]["code"] = "kPa"
    items = [(r, codes.SESSION_VITAL_SIGN_PROFILE) for r in (swapped, twice, unit)]
    assert _ours(items) == [False, False, False]
    assert _medplum(package_dir, items) == [False, False, False]


@requires_medplum
def test_the_shipped_r4_base_definitions_are_built_from_the_pinned_source() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "conformance" / "build_r4_base.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    not (ROOT / "tools" / "independent" / "node_modules" / "fhir").is_dir()
    or not (ROOT / "tools" / "independent" / ".venv" / "bin").is_dir(),
    reason="independent validators not installed: run `bash tools/independent/install.sh`",
)
def test_the_package_resources_pass_the_three_independent_r4_validators(
    package_dir: Path, tmp_path: Path
) -> None:
    for path in (package_dir / "package").glob("*-*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "independent" / "check.py"), "--json", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(done.stdout)["findings"] == []


def test_an_unwritable_output_folder_is_exit_code_3_without_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["package", "--out", str(blocker / "pkg")])
    assert result.exit_code == 3
    assert "cannot write the package" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
