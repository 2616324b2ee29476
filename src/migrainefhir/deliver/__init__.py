"""Delivery: sending an export to a FHIR server (`migrainefhir push`).

Holds the push run (push.py: `push`, `PushOptions`, `PushResult`: each patient's transaction
Bundles in order, several patients at once, every entry's status checked), the journal that
makes a re-run resume (journal.py), the HTTP transport with its retries, time limits and TLS
and address rules (transport.py), and the credentials: a bearer token file or SMART Backend
Services (credentials.py).

May import: the leaves (problems, errors, codes, ids, schema, report) and the earlier stages
input/, convert/, validate/ and export/. Nothing here imports outcomes/ or conformance/.
This file imports nothing; httpx, PyJWT and cryptography are imported only by the modules
that need them, so `migrainefhir --help` stays fast.
"""
