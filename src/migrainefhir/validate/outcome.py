"""Problems as a FHIR R4 OperationOutcome, for integrators' tools.

One issue per Problem: severity, an IssueType code (http://hl7.org/fhir/ValueSet/issue-type),
details.coding = our permanent problem code in the project CodeSystem, details.text = the
message, diagnostics = where in the input (file:line entry[i]), and expression = the FHIRPath
of the element. R4's `location` (XPath) is deprecated and left out.

Expressions: problems of the `bundle.*` layer are paths from the Bundle root
("Bundle.entry[3].request.url"); a resource problem inside a Bundle is prefixed with
"Bundle.entry[i].resource"; any other resource problem with its resource type, looked up in
`resource_types` by the problem's Source (validate_paths collects them), else "Resource".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from migrainefhir.problems import PROBLEM_CODES, Problem, Severity, Source

PROBLEM_CODE_SYSTEM = "https://migrainefhir.org/fhir/CodeSystem/problem-code"

# Our code -> R4 IssueType, where the layer default below is not the best fit.
_ISSUE_TYPES = {
    "fhir.required": "required",
    "fhir.int32": "value",
    "fhir.date-impossible": "value",
    "fhir.reference-form": "value",
    "fhir.empty": "value",
    "fhir.value-choice": "structure",
    "fhir.status-code": "code-invalid",
    "fhir.project-code": "code-invalid",
    "fhir.ucum-unit": "code-invalid",
    "fhir.vital-sign-code": "code-invalid",
    "fhir.period-order": "business-rule",
    "fhir.profile-unknown": "not-supported",
    "bundle.bdl-7": "duplicate",
    "bundle.duplicate-id": "duplicate",
    "bulk.duplicate-id": "duplicate",
    "bundle.reference-unresolved": "not-found",
    "bulk.reference-unresolved": "not-found",
    "bundle.reference-external": "not-found",
    "bundle.conditional-reference": "not-supported",
    "bulk.conditional-reference": "not-supported",
    "bundle.orphan": "business-rule",
    "bulk.file-missing": "not-found",
}
_LAYER_ISSUE_TYPES = {
    "structure": "structure",
    "rule": "invariant",
    "profile": "processing",
    "bundle": "invalid",
}


def issue_type(code: str) -> str:
    if code in _ISSUE_TYPES:
        return _ISSUE_TYPES[code]
    if code.startswith("bundle.bdl-"):
        return "invariant"
    info = PROBLEM_CODES.get(code)
    return _LAYER_ISSUE_TYPES.get(info.layer, "invalid") if info is not None else "invalid"


def expression(problem: Problem, resource_type: str | None = None) -> str | None:
    """The FHIRPath of the problem's element, or None when the problem is about no FHIR
    element (a manifest field, an unreadable line)."""
    tail = problem.path[1:] if problem.path.startswith("$") else "." + problem.path
    if problem.code.startswith("bulk.manifest") or problem.code == "fhir.json-syntax":
        return None
    if problem.code.startswith("bundle."):
        return "Bundle" + tail
    entry = problem.source.entry if problem.source is not None else None
    if entry is not None:
        return f"Bundle.entry[{entry}].resource" + tail
    return (resource_type or "Resource") + tail


def operation_outcome(
    problems: Iterable[Problem], resource_types: Mapping[Source | None, str] | None = None
) -> dict[str, object]:
    """A valid R4 OperationOutcome with one issue per problem (one "informational" issue, as
    R4 requires at least one, when there are none)."""
    types = resource_types or {}
    issues: list[dict[str, object]] = []
    for problem in problems:
        issue: dict[str, object] = {
            "severity": problem.severity.value,
            "code": issue_type(problem.code),
            "details": {
                "coding": [{"system": PROBLEM_CODE_SYSTEM, "code": problem.code}],
                "text": problem.message,
            },
        }
        if problem.source is not None:
            issue["diagnostics"] = str(problem.source)
        where = expression(problem, types.get(problem.source))
        if where is not None:
            issue["expression"] = [where]
        issues.append(issue)
    if not issues:
        issues.append(
            {
                "severity": Severity.INFORMATION.value,
                "code": "informational",
                "details": {"text": "no problems found"},
            }
        )
    return {"resourceType": "OperationOutcome", "issue": issues}
