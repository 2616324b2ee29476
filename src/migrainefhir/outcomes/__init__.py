"""The outcomes stage: headache outcome measures per 28-day window, and what shows them.

Holds the measures (metrics.py: per-day aggregates of each patient's diary, the 28-day windows
anchored at the first ketamine session, migraine / headache / acute-medication days, the
medication-overuse thresholds, baseline against follow-up), the tables researchers load
(tables.py: metrics.csv, outcomes.csv), the measures as FHIR R4 Observations validated against
their shipped profile (fhir.py), the self-contained HTML report (html.py with the Jinja2
templates in templates/, charts as inline SVG: charts.py) and the `report` run that reads the
input once and writes all of them into a staged folder (run.py). The definitions and their
sources are in docs/outcomes.md.

May import: the leaves, and the stages input/, convert/, validate/ and export/ (it reads
records through input/intake.py, exactly as export does: the same readers, time zones and
de-identification). No earlier stage imports this one. This file imports nothing, so
importing one module of the package stays cheap.
"""
