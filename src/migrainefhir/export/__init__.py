"""The export run: shards, worker processes, the gate, the ordered merge and the sinks.

Holds the export job (job.py: `export`, with options.py's `ExportOptions`), the input split
into shards (shards.py), the worker processes (workers.py, worker.py), the gate that converts
and validates records (gate.py), the part files (parts.py), the merge (merge.py), the output
sinks (sinks.py, bundle.py) and the staged private output folder (output.py).

May import: the leaves (problems, errors, codes, ids, schema, report) and the earlier stages
input/, convert/ and validate/. Nothing here imports deliver/, outcomes/ or conformance/.
This file imports nothing, so importing one module of the package stays cheap.
"""
