"""The input stage: files -> raw records -> checked, typed records (or their Problems).

Holds the readers (readers.py: JSON, NDJSON, CSV, standard input, folders; csvform.py: the CSV
forms of nested fields), the raw record as read (raw.py), the typed records the converters
receive (records.py), parsing and the contract's rules (model.py, contract.py), the check of
every record with run-wide duplicate ids (intake.py) and de-identification (deidentify.py).

May import: the leaves only (problems, errors, codes, ids, schema). Every later stage may
import this one. This file imports nothing, so importing one module of the package stays cheap.
"""
