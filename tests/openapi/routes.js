#!/usr/bin/env node
// Compares the routes of an OpenAPI document with the server's route table.
//   node routes.js openapi.json routes.txt
// routes.txt: one "METHOD /path/{param}" per line; blank lines and lines
// starting with # are ignored. Exits 1 and lists the differences if the two
// sets differ. No dependencies.
'use strict';
const fs = require('fs');

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function die(msg) {
  console.log(`routes: FAILED: ${msg}`);
  process.exit(1);
}

const [docFile, routesFile] = process.argv.slice(2);
if (!docFile || !routesFile) die('usage: node routes.js openapi.json routes.txt');

let doc;
try {
  doc = JSON.parse(fs.readFileSync(docFile, 'utf8'));
} catch (e) {
  die(`${docFile}: ${e.message}`);
}

const fromDoc = new Set();
for (const [path, item] of Object.entries(doc.paths || {})) {
  for (const m of METHODS) if (item[m]) fromDoc.add(`${m.toUpperCase()} ${path}`);
}

let text;
try {
  text = fs.readFileSync(routesFile, 'utf8');
} catch (e) {
  die(`${routesFile}: ${e.message}`);
}
const fromServer = new Set();
const bad = [];
text.split(/\r?\n/).forEach((line, i) => {
  const l = line.trim();
  if (l === '' || l.startsWith('#')) return;
  const m = /^([A-Za-z]+)\s+(\/\S*)$/.exec(l);
  if (!m) {
    bad.push(`${routesFile}:${i + 1}: not "METHOD /path": ${l}`);
    return;
  }
  fromServer.add(`${m[1].toUpperCase()} ${m[2]}`);
});
if (bad.length) die(`${bad.length} malformed line(s)\n  - ${bad.join('\n  - ')}`);

const onlyDoc = [...fromDoc].filter((r) => !fromServer.has(r)).sort();
const onlyServer = [...fromServer].filter((r) => !fromDoc.has(r)).sort();
if (onlyDoc.length || onlyServer.length) {
  console.log(`routes: FAILED: ${onlyDoc.length} only in ${docFile}, ${onlyServer.length} only in ${routesFile}`);
  for (const r of onlyDoc) console.log(`  - only in the document: ${r}`);
  for (const r of onlyServer) console.log(`  - only in the route table: ${r}`);
  process.exit(1);
}
console.log(`routes: OK: ${fromDoc.size} routes match between ${docFile} and ${routesFile}`);
