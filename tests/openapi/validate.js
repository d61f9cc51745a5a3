#!/usr/bin/env node
// Validates an OpenAPI document: node validate.js FILE
//  1. swagger-parser validate(): schema validation of the whole document and
//     its semantics ($refs resolve, path parameters declared, unique operationIds).
//  2. Project conventions: every operation has operationId, summary, tags and a
//     2xx response; every parameter has a schema; path IDs are int64 >= 1;
//     compat routes are deprecated; a 503 that can be `busy` has Retry-After;
//     error codes used in examples are in the ErrorCode enum.
//  3. Every example (media-type and named examples) validates against its schema (ajv).
// Prints one summary line; exits 1 on any problem.
'use strict';
const fs = require('fs');
const SwaggerParser = require('@apidevtools/swagger-parser');
const Ajv = require('ajv');

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function fail(msg, problems) {
  console.log(`openapi: FAILED: ${msg}`);
  for (const p of problems || []) console.log(`  - ${p}`);
  process.exit(1);
}

function conventionProblems(doc) {
  const problems = [];
  const errorCodes = new Set((((doc.components || {}).schemas || {}).ErrorCode || {}).enum || []);
  if (errorCodes.size === 0) problems.push('components.schemas.ErrorCode has no enum');
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.operationId) problems.push(`${where}: no operationId`);
      if (!op.summary) problems.push(`${where}: no summary`);
      if (!op.tags || op.tags.length === 0) problems.push(`${where}: no tags`);
      const params = [...(item.parameters || []), ...(op.parameters || [])];
      for (const p of params) {
        if (!p.schema) problems.push(`${where}: parameter ${p.name} has no schema`);
        if (p.in === 'path') {
          const s = p.schema || {};
          if (s.type !== 'integer' || s.format !== 'int64' || s.minimum !== 1) {
            problems.push(`${where}: path parameter ${p.name} is not integer/int64/minimum 1`);
          }
        }
      }
      const codes = Object.keys(op.responses || {});
      if (!codes.some((c) => /^2/.test(c))) problems.push(`${where}: no 2xx response`);
      if ((op.tags || []).includes('compat')) {
        if (op.deprecated !== true) problems.push(`${where}: compat route not deprecated`);
        if (!/Compatibility route of the original NestJS app/.test(op.description || '')) {
          problems.push(`${where}: compat route lacks the compatibility description`);
        }
      }
      for (const [code, resp] of Object.entries(op.responses || {})) {
        for (const media of Object.values(resp.content || {})) {
          const examples = [media.example, ...Object.values(media.examples || {}).map((e) => e.value)];
          for (const ex of examples) {
            const c = ex && ex.error && ex.error.code;
            if (c === undefined) continue;
            if (!errorCodes.has(c)) problems.push(`${where} ${code}: example error code ${c} not in ErrorCode`);
            if (c === 'busy' && !(resp.headers && resp.headers['Retry-After'])) {
              problems.push(`${where} ${code}: busy without a Retry-After header`);
            }
          }
        }
      }
    }
  }
  return problems;
}

// OpenAPI 3.0 schema objects are close enough to JSON Schema for ajv once
// `nullable` is understood (ajv supports it natively) and unknown keywords
// (example, x-*) are tolerated.
function exampleProblems(doc) {
  const problems = [];
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const check = (where, schema, value) => {
    if (!schema || value === undefined) return;
    let validate;
    try {
      validate = ajv.compile(schema);
    } catch (e) {
      problems.push(`${where}: schema does not compile: ${e.message}`);
      return;
    }
    if (!validate(value)) problems.push(`${where}: example invalid: ${ajv.errorsText(validate.errors)}`);
  };
  const checkMedia = (where, media) => {
    check(where, media.schema, media.example);
    for (const [name, ex] of Object.entries(media.examples || {})) check(`${where} example ${name}`, media.schema, ex.value);
  };
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const where = `${method.toUpperCase()} ${path}`;
      for (const [ct, media] of Object.entries((op.requestBody || {}).content || {})) checkMedia(`${where} body ${ct}`, media);
      for (const [code, resp] of Object.entries(op.responses || {})) {
        for (const [ct, media] of Object.entries(resp.content || {})) checkMedia(`${where} ${code} ${ct}`, media);
      }
    }
  }
  for (const [name, schema] of Object.entries((doc.components || {}).schemas || {})) {
    check(`schema ${name}`, schema, schema.example);
  }
  return problems;
}

async function main() {
  const file = process.argv[2];
  if (!file) fail('usage: node validate.js FILE');
  let raw;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  let deref;
  try {
    // validate() dereferences in place: give it a copy.
    deref = await SwaggerParser.validate(structuredClone(raw));
  } catch (e) {
    fail(`${file}: ${e.message.split('\n').join(' ')}`);
  }
  const problems = [...conventionProblems(deref), ...exampleProblems(deref)];
  if (problems.length) fail(`${file}: ${problems.length} problem(s)`, problems);
  let ops = 0;
  for (const item of Object.values(deref.paths)) ops += METHODS.filter((m) => item[m]).length;
  console.log(
    `openapi: OK: ${file}: ${deref.info.title} ${deref.info.version} (OpenAPI ${deref.openapi}), ` +
      `${Object.keys(deref.paths).length} paths, ${ops} operations`,
  );
}

main().catch((e) => fail(e.stack || String(e)));
