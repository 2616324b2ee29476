"""`python -m migrainefhir`."""

from migrainefhir.cli import main

main()
