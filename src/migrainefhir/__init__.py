"""migrainefhir: headache diaries and ketamine session records to validated FHIR R4.

The public API lives in pipeline.py and is re-exported here; this module holds no logic and
imports nothing heavy, so `migrainefhir --help` stays fast.
"""

__version__ = "0.1.0"
