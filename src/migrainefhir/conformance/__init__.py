"""The conformance package: migrainefhir's profiles as FHIR StructureDefinitions, with the
project's CodeSystems, ValueSets, extensions, a CapabilityStatement, an ImplementationGuide and
the examples' output, written as a FHIR NPM package (`migrainefhir package --out DIR`).

Everything is generated at build time from what the validator runs: the profile JSON Schemas
(schemas/profiles/, via validate/profiles.py) become the StructureDefinitions' differentials
(differential.py), and the snapshots are generated from the pinned R4 base definitions shipped
beside this file (base.py, r4-base.json.gz; snapshot.py). package.py writes the package.

A stage of rank 5 (docs/design.md): it may import the leaves and input/, convert/, validate/
and export/; nothing but cli.py and pipeline.py imports it. This __init__ imports nothing.
"""
