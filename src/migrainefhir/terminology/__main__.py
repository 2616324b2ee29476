"""Regenerate the shipped terminology files from codes.py: python -m migrainefhir.terminology"""

from pathlib import Path

from migrainefhir.terminology import write

for path in write(Path(__file__).parent):
    print(path)
