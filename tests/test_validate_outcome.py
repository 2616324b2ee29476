"""Problems as an R4 OperationOutcome, itself valid R4 (checked with fhir.resources R4B)."""

from fhir.resources.R4B.operationoutcome import OperationOutcome

from migrainefhir.problems import Problem, Severity, Source
from migrainefhir.validate.outcome import PROBLEM_CODE_SYSTEM, operation_outcome

IN_BUNDLE = Problem(
    "fhir.status-code", Severity.ERROR, "bad status", "$.status", Source("b.json", entry=3)
)
BUNDLE_LEVEL = Problem(
    "bundle.bdl-3", Severity.ERROR, "no request", "$.entry[2]", Source("b.json", entry=2)
)
NDJSON = Problem(
    "fhir.required", Severity.ERROR, "missing", "$.subject", Source("Procedure.ndjson", line=7)
)
UNRESOLVED = Problem(
    "bundle.reference-unresolved",
    Severity.ERROR,
    "x",
    "$.entry[1].resource.subject.reference",
    Source("b.json", entry=1),
)
ORPHAN = Problem(
    "bundle.orphan", Severity.WARNING, "nobody refers", "$.entry[4]", Source("b.json", entry=4)
)


def test_the_outcome_is_valid_r4() -> None:
    outcome = operation_outcome([IN_BUNDLE, BUNDLE_LEVEL, NDJSON, UNRESOLVED, ORPHAN])
    OperationOutcome.model_validate(outcome)
    assert len(outcome["issue"]) == 5  # type: ignore[arg-type]


def test_an_issue_carries_severity_type_code_text_and_place() -> None:
    outcome = operation_outcome([IN_BUNDLE])
    assert outcome["issue"] == [
        {
            "severity": "error",
            "code": "code-invalid",
            "details": {
                "coding": [{"system": PROBLEM_CODE_SYSTEM, "code": "fhir.status-code"}],
                "text": "bad status",
            },
            "diagnostics": "b.json entry[3]",
            "expression": ["Bundle.entry[3].resource.status"],
        }
    ]


def test_expressions_and_issue_types_by_layer() -> None:
    types = {Source("Procedure.ndjson", line=7): "Procedure"}
    issues = operation_outcome([BUNDLE_LEVEL, NDJSON, UNRESOLVED, ORPHAN], types)["issue"]
    assert [(i["code"], i["expression"]) for i in issues] == [  # type: ignore[index, union-attr]
        ("invariant", ["Bundle.entry[2]"]),
        ("required", ["Procedure.subject"]),
        ("not-found", ["Bundle.entry[1].resource.subject.reference"]),
        ("business-rule", ["Bundle.entry[4]"]),
    ]


def test_no_problems_still_makes_a_valid_outcome() -> None:
    outcome = operation_outcome([])
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"] == [
        {
            "severity": "information",
            "code": "informational",
            "details": {"text": "no problems found"},
        }
    ]
