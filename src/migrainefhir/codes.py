"""Every code system URI, code, profile and extension canonical the converters emit.

Each external code carries its source: a row of ../shared/reference/terminology.md (cited as
"terminology.md §N", with the confidence given there) or a page we checked ourselves (cited
by URL). Only codes marked verified or verified (secondary) are used. Where no standard code
exists, the concept lives in a project CodeSystem under https://migrainefhir.org/fhir/ (defined
below and shipped as FHIR R4 JSON in migrainefhir/terminology/); never a made-up code in
someone else's system.

This is a leaf module: no imports from the rest of the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- Code systems (external) ------------------------------------------------------------------

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROVENANCE_PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ADVERSE_EVENT_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
# HL7 Symptoms IG 1.0.0 (hl7.fhir.uv.symptoms, canonical http://hl7.org/fhir/uv/symptoms):
# CodeSystem SymptomTemporary, input/fsh/Terminology.fsh at tag 1.0.0 of HL7/fhir-symptoms-ig.
SYMPTOM_TEMPORARY = "http://hl7.org/fhir/uv/symptoms/CodeSystem/SymptomTemporary"

PROJECT_BASE = "https://migrainefhir.org/fhir"
# Version of the shipped project terminology and extension definitions (not the package).
TERMINOLOGY_VERSION = "1.1.0"


@dataclass(frozen=True, slots=True)
class Code:
    """One code in one system, with the display we send (None where editions disagree)."""

    system: str
    code: str
    display: str | None = None
    # The Coding, built once: coding() returns a copy (a resource may be changed in place
    # later, so no two resources share one). Copying is faster than building, and every
    # resource carries several codings.
    _coding: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        coding = {"system": self.system, "code": self.code}
        if self.display is not None:
            coding["display"] = self.display
        object.__setattr__(self, "_coding", coding)  # frozen: set once, here

    def coding(self) -> dict[str, str]:
        return self._coding.copy()

    def concept(self, text: str | None = None) -> dict[str, Any]:
        """A CodeableConcept holding this code (and the text, when given)."""
        if text is None:
            return {"coding": [self._coding.copy()]}
        return {"coding": [self._coding.copy()], "text": text}


# --- Project code systems ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectCodeSystem:
    """A CodeSystem we define (content complete) with its all-codes ValueSet."""

    id: str
    name: str  # computable name
    title: str
    description: str
    concepts: tuple[tuple[str, str, str], ...]  # (code, display, definition)

    @property
    def url(self) -> str:
        return f"{PROJECT_BASE}/CodeSystem/{self.id}"

    @property
    def value_set_url(self) -> str:
        return f"{PROJECT_BASE}/ValueSet/{self.id}"

    def __getitem__(self, code: str) -> Code:
        for concept_code, display, _definition in self.concepts:
            if concept_code == code:
                return Code(self.url, concept_code, display)
        raise KeyError(f"{code} is not defined in {self.url}")


TRIGGER_CS = ProjectCodeSystem(
    "headache-trigger",
    "HeadacheTrigger",
    "Headache trigger",
    "Suspected headache triggers as recorded in a migraine diary. SNOMED CT has no trigger "
    "hierarchy and no verified finding for most of these (terminology.md §4).",
    (
        ("stress", "Stress", "Psychological stress suspected to have triggered the attack."),
        ("hormonal-change", "Hormonal change", "Hormonal change other than menstruation."),
        ("menstruation", "Menstruation", "Menstruation (perimenstrual period)."),
        ("caffeine", "Caffeine", "Caffeine intake or caffeine withdrawal."),
        ("alcohol", "Alcohol", "Alcohol intake."),
        ("aged-cheese", "Aged cheese", "Aged cheese or other tyramine-rich food."),
        ("other-food", "Other food", "A food other than aged cheese."),
        ("physical-exertion", "Physical exertion", "Physical exertion or exercise."),
        ("bright-light", "Bright light", "Bright or flickering light."),
        ("strong-smell", "Strong smell", "Strong smell or odour."),
        ("lack-of-sleep", "Lack of sleep", "Too little or disturbed sleep."),
        ("skipped-meal", "Skipped meal", "Fasting or a skipped meal."),
        ("weather-change", "Weather change", "Change of weather or barometric pressure."),
        ("other", "Other trigger", "Another trigger; the diary's free text says which."),
    ),
)

SYMPTOM_CS = ProjectCodeSystem(
    "migraine-symptom",
    "MigraineSymptom",
    "Migraine symptom",
    "Migraine symptoms and phases with no verified SNOMED CT finding (terminology.md §3 and "
    "open questions 2 and 5).",
    (
        ("photophobia", "Photophobia", "Abnormal sensitivity to light during the attack."),
        ("osmophobia", "Osmophobia", "Abnormal sensitivity to smells during the attack."),
        ("neck-pain", "Neck pain", "Neck pain accompanying the attack."),
        (
            "fatigue",
            "Fatigue",
            "Fatigue accompanying the attack. Not written since terminology 1.1.0: SNOMED CT "
            "84229001 (HL7 Symptoms IG CommonSymptomCodes) is used instead.",
        ),
        ("tingling-face", "Tingling of the face", "Aura: tingling (paraesthesia) of the face."),
        ("tingling-hands", "Tingling of the hands", "Aura: tingling (paraesthesia) of the hands."),
        ("numbness", "Numbness", "Aura: numbness."),
        ("speech-difficulty", "Speech difficulty", "Aura: difficulty speaking."),
        ("prodrome", "Migraine prodrome", "Premonitory (warning) phase before the headache."),
        ("postdrome", "Migraine postdrome", "Resolution phase after the headache."),
        ("no-pain", "No pain", "Headache intensity 'none' on the IHS 4-point verbal scale."),
    ),
)

DIARY_OBSERVATION_CS = ProjectCodeSystem(
    "diary-observation",
    "DiaryObservation",
    "Headache diary observation",
    "What a headache-diary Observation or component reports, where LOINC has no code "
    "(terminology.md §2: none found for these).",
    (
        (
            "functional-impairment",
            "Functional impairment during the attack",
            "Functional impairment during the attack on a 4-point scale.",
        ),
        ("stress-level", "Stress level", "Self-rated stress level, 0 (none) to 10 (extreme)."),
        (
            "exercise-duration",
            "Exercise duration",
            "Time spent exercising on the diary day. Not written since terminology 1.1.0: LOINC "
            "55411-3 Exercise duration is used instead.",
        ),
    ),
)

FUNCTIONAL_IMPAIRMENT_CS = ProjectCodeSystem(
    "functional-impairment",
    "FunctionalImpairment",
    "Functional impairment",
    "Functional impairment during a headache attack (the 4-point functional disability scale "
    "used in migraine trials).",
    (
        ("none", "No impairment", "Normal function."),
        ("mild", "Mild impairment", "Daily activities possible, with some difficulty."),
        ("moderate", "Moderate impairment", "Daily activities much impaired."),
        ("severe", "Severe impairment", "Bed rest or daily activities impossible."),
    ),
)

RELIEF_CS = ProjectCodeSystem(
    "medication-relief",
    "MedicationRelief",
    "Medication relief",
    "Relief of the headache attributed by the patient to an acute medication.",
    (
        ("none", "No relief", "The medication did not relieve the headache."),
        ("partial", "Partial relief", "The headache improved but did not go away."),
        ("complete", "Complete relief", "The headache went away."),
    ),
)

INDICATION_CS = ProjectCodeSystem(
    "headache-indication",
    "HeadacheIndication",
    "Headache indication",
    "Indications with no verified International SNOMED CT concept (terminology.md §1 and "
    "open question 1: no generic 'chronic migraine' concept was found).",
    (
        (
            "chronic-migraine",
            "Chronic migraine",
            "Headache on 15 or more days a month for more than 3 months, with migraine features "
            "on at least 8 of them (ICHD-3 1.3).",
        ),
    ),
)

ADVERSE_EFFECT_CS = ProjectCodeSystem(
    "ketamine-adverse-effect",
    "KetamineAdverseEffect",
    "Ketamine adverse effect",
    "Adverse effects of a ketamine session with no verified finding-level SNOMED CT concept "
    "(terminology.md §8).",
    (
        ("dissociation", "Dissociation", "Transient dissociative effect of ketamine."),
        ("other", "Other adverse effect", "Another adverse effect; the record's text says which."),
    ),
)

SESSION_PHASE_CS = ProjectCodeSystem(
    "session-phase",
    "SessionPhase",
    "Treatment session phase",
    "When, relative to the drug administration, a session measurement was taken.",
    (
        ("pre", "Before administration", "Baseline, before the drug was given."),
        ("during", "During administration", "While the drug was being given."),
        ("post", "After administration", "Recovery, after the drug was given."),
    ),
)

PERFORMER_ROLE_CS = ProjectCodeSystem(
    "performer-role",
    "PerformerRole",
    "Session performer role",
    "Role of the clinician supervising a ketamine session.",
    (
        ("physician", "Physician", "A physician."),
        ("nurse", "Nurse", "A nurse."),
        ("anesthesiologist", "Anesthesiologist", "An anesthesiologist."),
        ("other", "Other clinician", "Another clinical role."),
    ),
)

HEADACHE_OUTCOME_CS = ProjectCodeSystem(
    "headache-outcome",
    "HeadacheOutcome",
    "Headache outcome measure",
    "Headache outcome measures computed from a headache diary over one 28-day window (the "
    "'month' of the IHS guidelines for preventive treatment trials), and the window summary "
    "that carries them as components. LOINC has no code for monthly migraine days or the "
    "others (docs/outcomes.md gives each definition and its source).",
    (
        (
            "diary-window-summary",
            "Headache diary 28-day window summary",
            "The headache outcome measures of one patient over one 28-day diary window.",
        ),
        (
            "window-number",
            "Window number",
            "The window's number: 0 is the 28-day baseline "
            "just before the first ketamine session, 1 the 28 days from it, and so on.",
        ),
        ("diary-days", "Diary days", "Distinct dates with a diary entry in the window."),
        ("headache-days", "Headache days", "Dates in the window with a headache recorded."),
        (
            "migraine-days",
            "Migraine days",
            "Headache days in the window that meet migrainefhir's migraine-day definition "
            "(ICHD-3 migraine or probable migraine, aura, or a triptan or ergot taken).",
        ),
        (
            "acute-medication-days",
            "Acute medication days",
            "Dates in the window with any acute headache medication taken.",
        ),
        (
            "triptan-ergot-days",
            "Triptan or ergot days",
            "Dates in the window with a triptan, ergotamine or dihydroergotamine taken.",
        ),
        (
            "simple-analgesic-days",
            "Simple analgesic days",
            "Dates in the window with ibuprofen, acetaminophen, aspirin or naproxen taken.",
        ),
        (
            "moh-risk",
            "Medication-overuse risk",
            "True when triptans or ergots were taken on 10 or more days, or simple analgesics "
            "on 15 or more days, of the window (the ICHD-3 8.2 thresholds, the window as the "
            "month).",
        ),
    ),
)


PROJECT_CODE_SYSTEMS: tuple[ProjectCodeSystem, ...] = (
    TRIGGER_CS,
    SYMPTOM_CS,
    DIARY_OBSERVATION_CS,
    FUNCTIONAL_IMPAIRMENT_CS,
    RELIEF_CS,
    INDICATION_CS,
    ADVERSE_EFFECT_CS,
    SESSION_PHASE_CS,
    PERFORMER_ROLE_CS,
    HEADACHE_OUTCOME_CS,
)

# Project concepts defined in an earlier terminology version and since replaced by a standard
# code with the same meaning (kept, as a published CodeSystem keeps its concepts, so data
# exported before still resolves): fatigue -> SNOMED 84229001, exercise-duration -> LOINC 55411-3.
RESERVED_PROJECT_CODES: frozenset[tuple[str, str]] = frozenset(
    {
        (f"{PROJECT_BASE}/CodeSystem/migraine-symptom", "fatigue"),
        (f"{PROJECT_BASE}/CodeSystem/diary-observation", "exercise-duration"),
    }
)

# --- Profiles ---------------------------------------------------------------------------------

# HL7 Symptoms IG 1.0.0: canonical http://hl7.org/fhir/uv/symptoms (sushi-config.yaml at tag
# 1.0.0) + StructureDefinition ids from input/fsh/SymptomObservation.fsh and
# SymptomAbsentObservation.fsh.
SYMPTOMS_IG = "http://hl7.org/fhir/uv/symptoms"
SYMPTOM_OBSERVATION_PROFILE = f"{SYMPTOMS_IG}/StructureDefinition/SymptomObservation"
SYMPTOM_ABSENT_PROFILE = f"{SYMPTOMS_IG}/StructureDefinition/SymptomAbsentObservation"
# Extension SurroundingEventMedication (slice relatedMedication on the trigger and alleviating
# components), same file.
RELATED_MEDICATION_EXTENSION = f"{SYMPTOMS_IG}/StructureDefinition/SurroundingEventMedication"
# R4 core extension (hl7.org/fhir/R4/extension-workflow-supportinginfo.html), which the
# Symptoms IG slices as associatedSymptomOrCondition.
SUPPORTING_INFO_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo"

# FHIR R4 vital-signs profiles (terminology.md §(c) and §7; hl7.org/fhir/R4/vitalsigns.html).
_CORE = "http://hl7.org/fhir/StructureDefinition"
HEART_RATE_PROFILE = f"{_CORE}/heartrate"
RESPIRATORY_RATE_PROFILE = f"{_CORE}/resprate"
OXYGEN_SATURATION_PROFILE = f"{_CORE}/oxygensat"
BLOOD_PRESSURE_PROFILE = f"{_CORE}/bp"
BODY_WEIGHT_PROFILE = f"{_CORE}/bodyweight"

_PROFILE = f"{PROJECT_BASE}/StructureDefinition"
HEADACHE_ATTACK_PROFILE = f"{_PROFILE}/headache-attack"
HEADACHE_FREE_DAY_PROFILE = f"{_PROFILE}/headache-free-day"
ASSOCIATED_SYMPTOM_PROFILE = f"{_PROFILE}/headache-associated-symptom"
ABSENT_SYMPTOM_PROFILE = f"{_PROFILE}/headache-absent-symptom"
DIARY_LIFESTYLE_PROFILE = f"{_PROFILE}/diary-lifestyle-observation"
ACUTE_MEDICATION_PROFILE = f"{_PROFILE}/acute-medication-statement"
KETAMINE_PROCEDURE_PROFILE = f"{_PROFILE}/ketamine-session-procedure"
KETAMINE_ADMINISTRATION_PROFILE = f"{_PROFILE}/ketamine-administration"
SESSION_VITAL_SIGN_PROFILE = f"{_PROFILE}/session-vital-sign"
KETAMINE_ADVERSE_EVENT_PROFILE = f"{_PROFILE}/ketamine-adverse-event"
SESSION_ENCOUNTER_PROFILE = f"{_PROFILE}/ketamine-session-encounter"
SESSION_INDICATION_PROFILE = f"{_PROFILE}/ketamine-session-indication"
SESSION_PAIN_SCORE_PROFILE = f"{_PROFILE}/session-pain-score"
PATIENT_PROFILE = f"{_PROFILE}/migrainefhir-patient"
PROVENANCE_PROFILE = f"{_PROFILE}/migrainefhir-provenance"
HEADACHE_OUTCOME_WINDOW_PROFILE = f"{_PROFILE}/headache-outcome-window"

# Every project profile canonical: the validator ships one JSON Schema per entry.
PROJECT_PROFILES: tuple[str, ...] = (
    HEADACHE_ATTACK_PROFILE,
    HEADACHE_FREE_DAY_PROFILE,
    ASSOCIATED_SYMPTOM_PROFILE,
    ABSENT_SYMPTOM_PROFILE,
    DIARY_LIFESTYLE_PROFILE,
    ACUTE_MEDICATION_PROFILE,
    KETAMINE_PROCEDURE_PROFILE,
    KETAMINE_ADMINISTRATION_PROFILE,
    SESSION_VITAL_SIGN_PROFILE,
    KETAMINE_ADVERSE_EVENT_PROFILE,
    SESSION_ENCOUNTER_PROFILE,
    SESSION_INDICATION_PROFILE,
    SESSION_PAIN_SCORE_PROFILE,
    PATIENT_PROFILE,
    PROVENANCE_PROFILE,
    HEADACHE_OUTCOME_WINDOW_PROFILE,
)

# --- Project extensions (definitions shipped in migrainefhir/terminology/) ---------------------

RELIEF_EXTENSION = f"{_PROFILE}/medication-relief"
SESSION_PHASE_EXTENSION = f"{_PROFILE}/session-phase"
DOSE_PER_WEIGHT_EXTENSION = f"{_PROFILE}/dose-per-body-weight"
SESSION_NUMBER_EXTENSION = f"{_PROFILE}/course-session-number"

PROJECT_EXTENSIONS: tuple[str, ...] = (
    RELIEF_EXTENSION,
    SESSION_PHASE_EXTENSION,
    DOSE_PER_WEIGHT_EXTENSION,
    SESSION_NUMBER_EXTENSION,
)

# HL7 v2 table 0203 Identifier Type, as the R4 CodeSystem (hl7.org/fhir/R4/v2/0203/index.html;
# HL7 v2-to-FHIR ConceptMap table-hl70203-to-v2-0203,
# https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-table-hl70203-to-v2-0203.html).
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
IDENTIFIER_TYPES: dict[str, Code] = {
    "MR": Code(IDENTIFIER_TYPE, "MR", "Medical record number"),
}

# Identifier system of the exporting software (a logical Device reference in Provenance).
SOFTWARE_IDENTIFIER_SYSTEM = f"{PROJECT_BASE}/sid/software"
SOFTWARE_NAME = "migrainefhir"

# --- Headache outcome windows (outcomes/fhir.py; docs/outcomes.md) --------------------------

# Every concept of the headache-outcome CodeSystem, by code: the window summary's code and
# its components, in the order the profile headache-outcome-window fixes.
HEADACHE_OUTCOME_CODES: dict[str, Code] = {
    code: HEADACHE_OUTCOME_CS[code] for code, _display, _definition in HEADACHE_OUTCOME_CS.concepts
}

# --- Observation categories (terminology.md §9, R4-VS observation-category) ------------------

CATEGORY_VITAL_SIGNS = Code(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")
CATEGORY_SURVEY = Code(OBSERVATION_CATEGORY, "survey", "Survey")
CATEGORY_ACTIVITY = Code(OBSERVATION_CATEGORY, "activity", "Activity")
# Symptoms IG category slice symptomCode = SymptomTemporary#symptom (SymptomObservation.fsh).
CATEGORY_SYMPTOM = Code(SYMPTOM_TEMPORARY, "symptom", "Symptom")

# --- Diary: Symptoms IG codes (input/fsh/SymptomObservation.fsh, SymptomAbsentObservation.fsh) --

SYMPTOM = Code(LOINC, "75325-1", "Symptom")
SYMPTOM_ABSENT = Code(LOINC, "111551-8", "Symptom absent")
SYMPTOM_SEVERITY = Code(LOINC, "64750-3", "Severity of symptoms")
SYMPTOM_QUALITY = Code(LOINC, "56823-8", "Problem quality or description")
EXACERBATING_FACTOR = Code(LOINC, "100752-5", "Exacerbating factors - Reported")
ALLEVIATING_FACTOR = Code(LOINC, "100753-3", "Alleviating factors - Reported")

# terminology.md §1: verified (OHDSI S/V; HL7 PHR IG ConceptMap).
HEADACHE = Code(SNOMED, "25064002", "Headache")
# terminology.md §2: verified (VSAC 2.16.840.1.113883.3.526.3.1028; LOINC mirror, ACTIVE).
PAIN_SEVERITY_0_10 = Code(
    LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
)
# HL7 PHR IG 1.0.0-ballot2 ValueSet pcd-sleep-observation-code
# (http://hl7.org/fhir/uv/phr/ValueSet/pcd-sleep-observation-code): 93832-4 "Sleep duration".
SLEEP_DURATION = Code(LOINC, "93832-4", "Sleep duration")

# Symptoms IG SeverityCodes = SNOMED descendants of 272141005 (Terminology.fsh); these three
# are the FHIR condition-severity value set (hl7.org/fhir/R5/valueset-condition-severity.html,
# expansion SNOMED CT International 2022-07-31).
SEVERITY_CATEGORY: dict[str, Code] = {
    "none": SYMPTOM_CS["no-pain"],
    "mild": Code(SNOMED, "255604002", "Mild"),
    # Display differs by edition ("Moderate", "Moderate severity"): none is sent.
    "moderate": Code(SNOMED, "6736007"),
    "severe": Code(SNOMED, "24484000", "Severe"),
}

# terminology.md §6: R4-VS bodysite-laterality, verified. Sent as the laterality of the head
# structure below (STRUCTURE_LATERALITY_EXTENSION), never as the body site itself: a laterality
# qualifier is not a body structure.
LATERALITY: dict[str, Code] = {
    "left": Code(SNOMED, "419161000", "Unilateral left"),
    "right": Code(SNOMED, "419465000", "Unilateral right"),
    "bilateral": Code(SNOMED, "51440002", "Bilateral"),
}

# The body site of a headache. 69536005 "Head structure": HL7 Belgium body-site ValueSet
# be-vs-body-site, expanded on tx.fhir.org (https://build.fhir.org/ig/hl7-be/referral-uhmep/
# branches/drp-1.1.1-fixed/ValueSet-be-vs-body-site.xml: 69536005 "Head structure"); DICOM PS3.16
# CID 4031 Common Anatomic Regions (69536005, SCT, "Head"). terminology.md §6 lists it as
# unverified (code not seen there); these two sources show code and term together.
HEAD_STRUCTURE = Code(SNOMED, "69536005", "Head structure")
# HL7 FHIR Extensions Pack (hl7.fhir.uv.extensions, 5.x, usable on R4):
# https://www.hl7.org/fhir/extensions/StructureDefinition-observation-structureLaterality.html,
# context Observation.bodySite, valueCodeableConcept: "the laterality of the body structure ...
# when laterality is needed to augment the Observation.bodySite".
STRUCTURE_LATERALITY_EXTENSION = (
    "http://hl7.org/fhir/StructureDefinition/observation-structureLaterality"
)

# terminology.md §3: verified rows only; the rest are project codes.
AURA = Code(SNOMED, "18618006", "Aura")  # OHDSI S/V
SYMPTOMS: dict[str, Code] = {
    "nausea": Code(SNOMED, "422587007", "Nausea"),  # PHR-IG, OHDSI, OCL-LC
    "vomiting": Code(SNOMED, "422400008", "Vomiting"),  # OHDSI, OCL-LC
    "photophobia": SYMPTOM_CS["photophobia"],  # 409668002 unverified (open question 2)
    "phonophobia": Code(SNOMED, "313387002", "Phonophobia"),  # MedGen
    "osmophobia": SYMPTOM_CS["osmophobia"],  # not found
    "dizziness": Code(SNOMED, "404640003", "Dizziness"),  # VSAC, PHR-IG, OHDSI
    "neck-pain": SYMPTOM_CS["neck-pain"],  # 81680005 not verified in any source we could read
    # HL7 Symptoms IG 1.0.0 ValueSet CommonSymptomCodes (input/fsh/Terminology.fsh lists
    # SNOMED 84229001); the IG gives no display, and none is sent.
    "fatigue": Code(SNOMED, "84229001"),
}
AURA_SYMPTOMS: dict[str, Code] = {
    "visual-flashing-lights": Code(SNOMED, "246641000", "Sees lights in visual field"),  # TX
    "visual-blind-spot": Code(SNOMED, "23388006", "Visual field scotoma"),  # VSAC, TX
    "visual-other": Code(SNOMED, "63102001", "Visual disturbance"),  # OCL-LC, OCL-PAEDS
    "tingling-face": SYMPTOM_CS["tingling-face"],  # no site-specific concept found
    "tingling-hands": SYMPTOM_CS["tingling-hands"],  # no site-specific concept found
    "numbness": SYMPTOM_CS["numbness"],  # not in terminology.md
    "speech-difficulty": SYMPTOM_CS["speech-difficulty"],  # not found
}
PRODROME = SYMPTOM_CS["prodrome"]
POSTDROME = SYMPTOM_CS["postdrome"]

TRIGGERS: dict[str, Code] = {code: TRIGGER_CS[code] for code, _d, _def in TRIGGER_CS.concepts}
# Standard codes sent before a trigger's project code (which stays: it carries the diary's
# meaning). terminology.md §4: 130989002 "Sleep deprivation", verified (active not confirmed);
# the project's lack-of-sleep also covers disturbed sleep.
TRIGGER_STANDARD_CODES: dict[str, Code] = {
    "lack-of-sleep": Code(SNOMED, "130989002", "Sleep deprivation"),
}
DISABILITY_COMPONENT = DIARY_OBSERVATION_CS["functional-impairment"]
DISABILITY: dict[str, Code] = {
    code: FUNCTIONAL_IMPAIRMENT_CS[code] for code, _d, _def in FUNCTIONAL_IMPAIRMENT_CS.concepts
}
STRESS_LEVEL = DIARY_OBSERVATION_CS["stress-level"]
# HL7 US Physical Activity IG 1.0.0 (R4), ValueSet pa-observation-code-activity
# (https://hl7.org/fhir/us/physical-activity/2023May/ValueSet-pa-observation-code-activity.html):
# 55411-3 "Exercise duration", with UCUM min in its examples (ExampleActivityDuration).
EXERCISE_DURATION = Code(LOINC, "55411-3", "Exercise duration")
RELIEF: dict[str, Code] = {code: RELIEF_CS[code] for code, _d, _def in RELIEF_CS.concepts}

# R4 MedicationStatement.category (hl7.org/fhir/R4/codesystem-medication-statement-category.html:
# inpatient, outpatient, community, patientspecified): the diary's intakes are what the patient
# says they took.
MEDICATION_STATEMENT_CATEGORY = (
    "http://terminology.hl7.org/CodeSystem/medication-statement-category"
)
PATIENT_SPECIFIED = Code(MEDICATION_STATEMENT_CATEGORY, "patientspecified", "Patient Specified")

# --- Acute medications: RxNorm ingredients (terminology.md §5) --------------------------------

ACUTE_DRUGS: dict[str, Code | None] = {
    "ibuprofen": Code(RXNORM, "5640", "ibuprofen"),  # verified (secondary)
    "acetaminophen": Code(RXNORM, "161", "acetaminophen"),  # OHDSI, verified
    # HL7 PDDI CDS IG ValueSet valueset-aspirin (http://hl7.org/fhir/uv/pddi/ValueSet/
    # valueset-aspirin, input/vocabulary/valueset-aspirin.xml of HL7/PDDI-CDS): 1191 "Aspirin".
    "aspirin": Code(RXNORM, "1191", "aspirin"),
    # HL7 PDDI CDS IG 1.0.0 ValueSet valueset-naproxen
    # (http://hl7.org/fhir/uv/pddi/ValueSet/valueset-naproxen): 7258 "Naproxen".
    "naproxen": Code(RXNORM, "7258", "naproxen"),
    "sumatriptan": Code(RXNORM, "37418", "sumatriptan"),  # OHDSI, verified
    "rizatriptan": Code(RXNORM, "88014", "rizatriptan"),  # OHDSI, verified
    "zolmitriptan": Code(RXNORM, "135775", "zolmitriptan"),  # OHDSI, verified
    "eletriptan": Code(RXNORM, "231049", "eletriptan"),  # OHDSI, verified
    "ergotamine": Code(RXNORM, "4025", "ergotamine"),  # OHDSI, verified
    "dihydroergotamine": Code(RXNORM, "3418", "dihydroergotamine"),  # OHDSI, verified
    "other": None,  # text only, from drug_text
}
DRUG_NAMES: dict[str, str] = {
    "ibuprofen": "ibuprofen",
    "acetaminophen": "acetaminophen",
    "aspirin": "aspirin",
    "naproxen": "naproxen",
    "sumatriptan": "sumatriptan",
    "rizatriptan": "rizatriptan",
    "zolmitriptan": "zolmitriptan",
    "eletriptan": "eletriptan",
    "ergotamine": "ergotamine",
    "dihydroergotamine": "dihydroergotamine",
    "other": "other medication",
}

# --- Ketamine sessions ------------------------------------------------------------------------

# terminology.md §6: 18629005 verified; display edition-dependent ("Administration of
# medicine" vs "Administration of drug or medicament"), so none is sent.
ADMINISTRATION_OF_MEDICINE = Code(SNOMED, "18629005")

KETAMINE_PRODUCTS: dict[str, Code] = {
    "ketamine": Code(RXNORM, "6130", "ketamine"),  # verified (secondary), open question 3
    "esketamine": Code(RXNORM, "2119365", "esketamine"),  # OHDSI, verified
}

# terminology.md §6 (R4-ROUTE, VSAC). Displays differ by edition ("Intravenous route" vs
# "Intravenous use"), so none is sent. Intramuscular: no verified code, text only.
ROUTES: dict[str, Code | None] = {
    "intravenous": Code(SNOMED, "47625008"),
    "intranasal": Code(SNOMED, "46713006"),
    "intramuscular": None,
}

# Routes of an acute medication (diary intakes). Intravenous and nasal: terminology.md §6 (as
# ROUTES). Oral 26643006 "Oral route", subcutaneous 34206005 "Subcutaneous route", rectal
# 37161004 "Per rectum": FHIR R5 ValueSet route-codes, expansion on SNOMED CT International
# 2022-07-31 (https://hl7.org/fhir/R5/valueset-route-codes.html). Displays differ by edition
# ("Oral use", "Rectal route"), so none is sent. Intramuscular 78421000: seen only in
# implementers' code, not in an HL7/NLM page we could read: text only, as for sessions.
INTAKE_ROUTES: dict[str, Code | None] = {
    "oral": Code(SNOMED, "26643006"),
    "intranasal": Code(SNOMED, "46713006"),
    "subcutaneous": Code(SNOMED, "34206005"),
    "rectal": Code(SNOMED, "37161004"),
    "intramuscular": None,
    "intravenous": Code(SNOMED, "47625008"),
}

INDICATIONS: dict[str, Code] = {
    "migraine": Code(SNOMED, "37796009", "Migraine"),  # OHDSI, OCL-PAEDS, verified
    "migraine-with-aura": Code(SNOMED, "4473006", "Migraine with aura"),  # OCL-PAEDS, MedGen
    "migraine-without-aura": Code(SNOMED, "56097005", "Migraine without aura"),  # OCL-PAEDS
    # terminology.md §1: verified (OCL-LC; active status not independently confirmed).
    "medication-overuse-headache": Code(SNOMED, "698803006", "Medication overuse headache"),
    # No International SNOMED concept (open question 1): project code.
    "chronic-migraine": INDICATION_CS["chronic-migraine"],
}

# terminology.md §8 (verified rows); dissociation and other: project codes.
ADVERSE_EFFECTS: dict[str, Code] = {
    "dissociation": ADVERSE_EFFECT_CS["dissociation"],
    "tachycardia": Code(SNOMED, "3424008", "Tachycardia"),  # VSAC, OHDSI
    # A transient rise, not the diagnosis 38341003 (terminology.md §8 advice).
    "hypertension": Code(SNOMED, "24184005", "Increased blood pressure"),  # VSAC
    "nausea": Code(SNOMED, "422587007", "Nausea"),
    "vomiting": Code(SNOMED, "422400008", "Vomiting"),
    "drowsiness": Code(SNOMED, "271782001", "Drowsy"),  # MedGen (open question 8)
    "disorientation": Code(SNOMED, "62476001", "Disorientated"),  # verified (secondary)
    "dizziness": Code(SNOMED, "404640003", "Dizziness"),
    "hallucination": Code(SNOMED, "7011001", "Hallucinations"),  # TX, active
    "other": ADVERSE_EFFECT_CS["other"],
}
# R4 adverse-event-severity (hl7.org/fhir/2018Sep/codesystem-adverse-event-severity.html,
# same system and codes in R4B: hl7.org/fhir/R4b/codesystem-adverse-event-severity.html).
ADVERSE_EVENT_SEVERITIES: dict[str, Code] = {
    "mild": Code(ADVERSE_EVENT_SEVERITY, "mild", "Mild"),
    "moderate": Code(ADVERSE_EVENT_SEVERITY, "moderate", "Moderate"),
    "severe": Code(ADVERSE_EVENT_SEVERITY, "severe", "Severe"),
}

# R4 AdverseEvent.seriousness (hl7.org/fhir/R4/codesystem-adverse-event-seriousness.html, the
# R4 4.0.1 codes: `Non-serious` and `Serious` at level 1; HL7 Terminology later lower-cased
# them, but we write R4).
ADVERSE_EVENT_SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SERIOUSNESS: dict[bool, Code] = {
    True: Code(ADVERSE_EVENT_SERIOUSNESS, "Serious", "Serious"),
    False: Code(ADVERSE_EVENT_SERIOUSNESS, "Non-serious", "Non-serious"),
}
# R4 AdverseEvent.outcome (hl7.org/fhir/R4/codesystem-adverse-event-outcome.html).
ADVERSE_EVENT_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
ADVERSE_EVENT_OUTCOMES: dict[str, Code] = {
    "resolved": Code(ADVERSE_EVENT_OUTCOME, "resolved", "Resolved"),
    "recovering": Code(ADVERSE_EVENT_OUTCOME, "recovering", "Recovering"),
    "ongoing": Code(ADVERSE_EVENT_OUTCOME, "ongoing", "Ongoing"),
    "resolved-with-sequelae": Code(
        ADVERSE_EVENT_OUTCOME, "resolvedWithSequelae", "Resolved with Sequelae"
    ),
    "fatal": Code(ADVERSE_EVENT_OUTCOME, "fatal", "Fatal"),
    "unknown": Code(ADVERSE_EVENT_OUTCOME, "unknown", "Unknown"),
}

# The session's Encounter: class AMB "ambulatory" from v3 ActCode (R4 Encounter.class binding,
# hl7.org/fhir/R4/v3/ActEncounterCode/vs.html: AMB ambulatory, EMER, FLD, HH, IMP, ...).
ENCOUNTER_CLASS_AMBULATORY = Code(
    "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"
)
# The indication as a Condition (terminology.md §9, R4-VS condition-clinical,
# condition-ver-status, condition-category: verified).
CONDITION_ACTIVE = Code(
    "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
)
CONDITION_CONFIRMED = Code(
    "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"
)
ENCOUNTER_DIAGNOSIS = Code(
    "http://terminology.hl7.org/CodeSystem/condition-category",
    "encounter-diagnosis",
    "Encounter Diagnosis",
)

PERFORMER_ROLES: dict[str, Code] = {
    code: PERFORMER_ROLE_CS[code] for code, _d, _def in PERFORMER_ROLE_CS.concepts
}
SESSION_PHASES: dict[str, Code] = {
    code: SESSION_PHASE_CS[code] for code, _d, _def in SESSION_PHASE_CS.concepts
}

# --- Vital signs (terminology.md §7, all verified) --------------------------------------------

HEART_RATE = Code(LOINC, "8867-4", "Heart rate")
RESPIRATORY_RATE = Code(LOINC, "9279-1", "Respiratory rate")
OXYGEN_SATURATION = Code(LOINC, "2708-6", "Oxygen saturation in Arterial blood")
OXYGEN_SATURATION_PULSE_OXIMETRY = Code(
    LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"
)
BLOOD_PRESSURE_PANEL = Code(LOINC, "85354-9", "Blood pressure panel with all children optional")
SYSTOLIC_BP = Code(LOINC, "8480-6", "Systolic blood pressure")
DIASTOLIC_BP = Code(LOINC, "8462-4", "Diastolic blood pressure")
BODY_WEIGHT = Code(LOINC, "29463-7", "Body weight")

# --- Provenance (hl7.org/fhir/R4/codesystem-provenance-agent-type: the 10 R4 codes) -----------

AGENT_AUTHOR = Code(PROVENANCE_PARTICIPANT_TYPE, "author", "Author")
AGENT_ASSEMBLER = Code(PROVENANCE_PARTICIPANT_TYPE, "assembler", "Assembler")


# --- UCUM units (terminology.md §10, R4 ucum-common / ucum-vitals-common) ----------------------


@dataclass(frozen=True, slots=True)
class Unit:
    code: str  # the UCUM code
    unit: str  # human-readable text for Quantity.unit


MG = Unit("mg", "mg")
KG = Unit("kg", "kg")
MG_PER_KG = Unit("mg/kg", "mg/kg")
MG_PER_KG_PER_H = Unit("mg/kg/h", "mg/kg/h")
PER_MIN = Unit("/min", "/min")
MM_HG = Unit("mm[Hg]", "mmHg")
PERCENT = Unit("%", "%")
HOUR = Unit("h", "h")
MINUTE = Unit("min", "min")
