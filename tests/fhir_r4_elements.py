"""FHIR R4 (4.0.1) element names of the resources and backbone elements we emit.

From the R4 structure tables (hl7.org/fhir/R4/<resource>.html; Procedure cross-checked against
the R4 property inventory of InterSystems HS.FHIRModel.R4.Procedure). Anything outside these
sets is an R4B/R5-only element (e.g. Procedure.occurrence[x], MedicationStatement.adherence,
Observation.triggeredBy) or a typo, and must not appear in our output.
"""

from __future__ import annotations

RESOURCE = {"resourceType", "id", "meta", "implicitRules", "language"}
DOMAIN_RESOURCE = RESOURCE | {"text", "contained", "extension", "modifierExtension"}
BACKBONE = {"id", "extension", "modifierExtension"}


def _value(prefix: str, types: str) -> set[str]:
    return {prefix + kind for kind in types.split()}


OBSERVATION_VALUE = _value(
    "value",
    "Quantity CodeableConcept String Boolean Integer Range Ratio SampledData Time DateTime Period",
)

R4_ELEMENTS: dict[str, set[str]] = {
    "Observation": DOMAIN_RESOURCE
    | {
        "identifier",
        "basedOn",
        "partOf",
        "status",
        "category",
        "code",
        "subject",
        "focus",
        "encounter",
        "issued",
        "performer",
        "dataAbsentReason",
        "interpretation",
        "note",
        "bodySite",
        "method",
        "specimen",
        "device",
        "referenceRange",
        "hasMember",
        "derivedFrom",
        "component",
    }
    | _value("effective", "DateTime Period Timing Instant")
    | OBSERVATION_VALUE,
    "Observation.component": BACKBONE
    | {"code", "dataAbsentReason", "interpretation", "referenceRange"}
    | OBSERVATION_VALUE,
    "MedicationStatement": DOMAIN_RESOURCE
    | {
        "identifier",
        "basedOn",
        "partOf",
        "status",
        "statusReason",
        "category",
        "subject",
        "context",
        "dateAsserted",
        "informationSource",
        "derivedFrom",
        "reasonCode",
        "reasonReference",
        "note",
        "dosage",
    }
    | _value("medication", "CodeableConcept Reference")
    | _value("effective", "DateTime Period"),
    "Dosage": BACKBONE
    | {
        "sequence",
        "text",
        "additionalInstruction",
        "patientInstruction",
        "timing",
        "site",
        "route",
        "method",
        "doseAndRate",
        "maxDosePerPeriod",
        "maxDosePerAdministration",
        "maxDosePerLifetime",
    }
    | _value("asNeeded", "Boolean CodeableConcept"),
    "Dosage.doseAndRate": {"id", "extension", "type"}
    | _value("dose", "Range Quantity")
    | _value("rate", "Ratio Range Quantity"),
    "Procedure": DOMAIN_RESOURCE
    | {
        "identifier",
        "instantiatesCanonical",
        "instantiatesUri",
        "basedOn",
        "partOf",
        "status",
        "statusReason",
        "category",
        "code",
        "subject",
        "encounter",
        "recorder",
        "asserter",
        "performer",
        "location",
        "reasonCode",
        "reasonReference",
        "bodySite",
        "outcome",
        "report",
        "complication",
        "complicationDetail",
        "followUp",
        "note",
        "focalDevice",
        "usedReference",
        "usedCode",
    }
    | _value("performed", "DateTime Period String Age Range"),
    "Procedure.performer": BACKBONE | {"function", "actor", "onBehalfOf"},
    "MedicationAdministration": DOMAIN_RESOURCE
    | {
        "identifier",
        "instantiates",
        "partOf",
        "status",
        "statusReason",
        "category",
        "subject",
        "context",
        "supportingInformation",
        "performer",
        "reasonCode",
        "reasonReference",
        "request",
        "device",
        "note",
        "dosage",
        "eventHistory",
    }
    | _value("medication", "CodeableConcept Reference")
    | _value("effective", "DateTime Period"),
    "MedicationAdministration.performer": BACKBONE | {"function", "actor"},
    "MedicationAdministration.dosage": BACKBONE
    | {"text", "site", "route", "method", "dose"}
    | _value("rate", "Ratio Quantity"),
    "AdverseEvent": DOMAIN_RESOURCE
    | {
        "identifier",
        "actuality",
        "category",
        "event",
        "subject",
        "encounter",
        "date",
        "detected",
        "recordedDate",
        "resultingCondition",
        "location",
        "seriousness",
        "severity",
        "outcome",
        "recorder",
        "contributor",
        "suspectEntity",
        "subjectMedicalHistory",
        "referenceDocument",
        "study",
    },
    "AdverseEvent.suspectEntity": BACKBONE | {"instance", "causality"},
    "Encounter": DOMAIN_RESOURCE
    | {
        "identifier",
        "status",
        "statusHistory",
        "class",
        "classHistory",
        "type",
        "serviceType",
        "priority",
        "subject",
        "episodeOfCare",
        "basedOn",
        "participant",
        "appointment",
        "period",
        "length",
        "reasonCode",
        "reasonReference",
        "diagnosis",
        "account",
        "hospitalization",
        "location",
        "serviceProvider",
        "partOf",
    },
    "Encounter.participant": BACKBONE | {"type", "period", "individual"},
    "Encounter.location": BACKBONE | {"location", "status", "physicalType", "period"},
    "Condition": DOMAIN_RESOURCE
    | {
        "identifier",
        "clinicalStatus",
        "verificationStatus",
        "category",
        "severity",
        "code",
        "bodySite",
        "subject",
        "encounter",
        "recordedDate",
        "recorder",
        "asserter",
        "stage",
        "evidence",
        "note",
    }
    | _value("onset", "DateTime Age Period Range String")
    | _value("abatement", "DateTime Age Period Range String"),
    "Provenance": DOMAIN_RESOURCE
    | {
        "target",
        "recorded",
        "policy",
        "location",
        "reason",
        "activity",
        "agent",
        "entity",
        "signature",
    }
    | _value("occurred", "Period DateTime"),
    "Provenance.agent": BACKBONE | {"type", "role", "who", "onBehalfOf"},
    "Provenance.entity": BACKBONE | {"role", "what", "agent"},
    "Patient": DOMAIN_RESOURCE
    | {
        "identifier",
        "active",
        "name",
        "telecom",
        "gender",
        "birthDate",
        "address",
        "maritalStatus",
        "photo",
        "contact",
        "communication",
        "generalPractitioner",
        "managingOrganization",
        "link",
    }
    | _value("deceased", "Boolean DateTime")
    | _value("multipleBirth", "Boolean Integer"),
    "Bundle": RESOURCE | {"identifier", "type", "timestamp", "total", "link", "entry", "signature"},
    "Bundle.entry": BACKBONE | {"link", "fullUrl", "resource", "search", "request", "response"},
    "Bundle.entry.request": BACKBONE
    | {"method", "url", "ifNoneMatch", "ifModifiedSince", "ifMatch", "ifNoneExist"},
    "Meta": {"id", "extension", "versionId", "lastUpdated", "source", "profile", "security", "tag"},
    "Reference": {"id", "extension", "reference", "type", "identifier", "display"},
}

# Backbone elements (path below the resource) checked against the sets above.
NESTED: dict[str, dict[str, str]] = {
    "Observation": {"component": "Observation.component"},
    "MedicationStatement": {"dosage": "Dosage"},
    "Procedure": {"performer": "Procedure.performer"},
    "MedicationAdministration": {
        "performer": "MedicationAdministration.performer",
        "dosage": "MedicationAdministration.dosage",
    },
    "AdverseEvent": {"suspectEntity": "AdverseEvent.suspectEntity"},
    "Encounter": {"participant": "Encounter.participant", "location": "Encounter.location"},
    "Provenance": {"agent": "Provenance.agent", "entity": "Provenance.entity"},
}


def unknown_elements(resource: dict[str, object]) -> list[str]:
    """Paths of keys in resource that are not R4 elements (empty when all are R4)."""
    kind = str(resource["resourceType"])
    bad = [f"{kind}.{key}" for key in resource if key not in R4_ELEMENTS[kind]]
    bad += [
        f"{kind}.meta.{key}" for key in resource.get("meta", {}) if key not in R4_ELEMENTS["Meta"]
    ]  # type: ignore[union-attr]
    for key, element in NESTED.get(kind, {}).items():
        value = resource.get(key)
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for item in items:
            bad += [f"{kind}.{key}.{k}" for k in item if k not in R4_ELEMENTS[element]]
            if element == "Dosage":
                for rate in item.get("doseAndRate", []):
                    bad += [
                        f"{kind}.{key}.doseAndRate.{k}"
                        for k in rate
                        if k not in R4_ELEMENTS["Dosage.doseAndRate"]
                    ]
    return bad
