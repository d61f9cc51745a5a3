// loadtest/k6-reservations.js without k6 (not installable here): the script
// is loaded by Node with stand-ins for the k6 modules, and its options and
// behaviour are checked against the original app's k6 scenario
// (shared/original-app.md: 10,000 VUs, 10,000 iterations, each VU sends
// POST /reservation/1/${__VU} once within 30 s; thresholds
// successful_bookings count==100 and http_req_duration p(95)<2000).
//   node --test tests/k6/k6_script_test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const scriptPath = join(root, 'loadtest', 'k6-reservations.js');
const source = readFileSync(scriptPath, 'utf8');

// The k6 modules the script imports, as a package "k6" in a scratch folder.
const work = mkdtempSync(join(tmpdir(), 'k6-script-test-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const pkg = join(work, 'node_modules', 'k6');
mkdirSync(pkg, { recursive: true });
const stubs = {
  'package.json': JSON.stringify({
    name: 'k6', type: 'module',
    exports: { '.': './index.js', './http': './http.js', './execution': './execution.js', './metrics': './metrics.js' },
  }),
  'index.js': 'export function check(res, sets) { for (const f of Object.values(sets)) f(res); return true; }\n',
  // modules load once; the state of the current load is looked up per call
  'http.js': `const k6 = () => globalThis.k6stub;
export default {
  post(url, body, params) { k6().requests.push({ method: 'POST', url, body, params }); return { status: k6().nextStatus }; },
  setResponseCallback(cb) { k6().responseCallback = cb; },
  expectedStatuses(...s) { return { expected: s }; },
};\n`,
  'execution.js': 'export default { scenario: { get iterationInTest() { return globalThis.k6stub.iteration; } } };\n',
  'metrics.js': `class Metric {
  constructor(name) { this.name = name; globalThis.k6stub.metrics[name] = this; this.samples = []; }
  add(v) { this.samples.push(v); }
  get count() { return this.samples.reduce((a, b) => a + Number(b), 0); }
}
export class Counter extends Metric {}
export class Rate extends Metric {}\n`,
};
for (const [name, text] of Object.entries(stubs)) writeFileSync(join(pkg, name), text);
copyFileSync(scriptPath, join(work, 'k6-reservations.mjs'));

let loads = 0;
// A fresh instance of the script under the given -e variables.
async function load(env = {}) {
  globalThis.k6stub = { requests: [], metrics: {}, nextStatus: 201, iteration: 0 };
  globalThis.__ENV = env;
  const mod = await import(`${pathToFileURL(join(work, 'k6-reservations.mjs'))}?load=${loads++}`);
  return { mod, k6: globalThis.k6stub };
}

test('spike: the original scenario, with one iteration per VU', async () => {
  const { mod } = await load();
  const scenarios = Object.entries(mod.options.scenarios);
  assert.equal(scenarios.length, 1);
  const [name, s] = scenarios[0];
  assert.equal(name, 'spike');
  // shared-iterations (the original's) lets one VU run two iterations; this does not
  assert.equal(s.executor, 'per-vu-iterations');
  assert.equal(s.vus, 10000);
  assert.equal(s.iterations, 1);
  assert.equal(s.vus * s.iterations, 10000, 'the original sends 10,000 requests in all');
  assert.equal(s.maxDuration, '30s');
  assert.equal(typeof mod[s.exec], 'function');
  const t = mod.options.thresholds;
  assert.deepEqual(t.successful_bookings, ['count==100']);
  assert.deepEqual(t.http_req_duration, ['p(95)<2000']);
  assert.deepEqual(t.failed_bookings, ['count==0']);
});

test('spike: each VU books its own user on event 1 at localhost:3001, as the original', async () => {
  const { mod, k6 } = await load();
  for (const vu of [1, 2, 10000]) {
    globalThis.__VU = vu;
    mod.spike();
  }
  assert.deepEqual(k6.requests.map((r) => r.url), [
    'http://localhost:3001/reservation/1/1',
    'http://localhost:3001/reservation/1/2',
    'http://localhost:3001/reservation/1/10000',
  ]);
  assert.equal(k6.requests[0].body, null, 'the compat route takes no body');
});

test('spike: EVENT_ID, USER_START, VUS and TICKETS from reservd-seed --export', async () => {
  const { mod, k6 } = await load({ EVENT_ID: '7', USER_START: '3', VUS: '500', TICKETS: '50', BASE_URL: 'http://127.0.0.1:3999' });
  assert.equal(mod.options.scenarios.spike.vus, 500);
  assert.deepEqual(mod.options.thresholds.successful_bookings, ['count==50']);
  globalThis.__VU = 1;
  mod.spike();
  globalThis.__VU = 500;
  mod.spike();
  assert.deepEqual(k6.requests.map((r) => r.url), [
    'http://127.0.0.1:3999/reservation/7/3',
    'http://127.0.0.1:3999/reservation/7/502',
  ]);
});

test('answers: 201 succeeds, 409 is refused (not failed), anything else fails', async () => {
  const { mod, k6 } = await load();
  globalThis.__VU = 1;
  for (const status of [201, 200, 409, 409, 409, 404, 503, 0]) {
    k6.nextStatus = status;
    mod.spike();
  }
  const m = k6.metrics;
  assert.equal(m.successful_bookings.count, 2);
  assert.equal(m.refused_bookings.count, 3);
  assert.equal(m.failed_bookings.count, 3, '404, 503 and no answer');
  // every answer is a sample of each, so every threshold has data to judge
  assert.equal(m.failed_bookings.samples.length, 8);
  assert.equal(m.booking_success.samples.filter(Boolean).length, 2);
  assert.equal(m.booking_success.samples.length, 8);
  // 409 is an expected status for k6's own http_req_failed
  assert.deepEqual(k6.responseCallback.expected, [{ min: 200, max: 299 }, 409]);
});

test("k6's own summary is kept: no handleSummary replaces it", async () => {
  const { mod } = await load();
  assert.equal(mod.handleSummary, undefined);
});

test('steady: constant arrival rate, unique users, events in turn', async () => {
  const { mod, k6 } = await load({ SCENARIO: 'steady', RATE: '500', DURATION: '5s', EVENTS: '3', EVENT_ID: '10', USER_START: '100' });
  const s = mod.options.scenarios.steady;
  assert.equal(s.executor, 'constant-arrival-rate');
  assert.equal(s.rate, 500);
  assert.equal(s.timeUnit, '1s');
  assert.equal(s.duration, '5s');
  assert.ok(s.maxVUs >= s.preAllocatedVUs);
  for (let i = 0; i < 4; i++) {
    k6.iteration = i;
    mod.steady();
  }
  assert.deepEqual(k6.requests.map((r) => JSON.parse(r.body)), [
    { eventId: 10, userId: 100 }, { eventId: 11, userId: 101 }, { eventId: 12, userId: 102 }, { eventId: 10, userId: 103 },
  ]);
  assert.ok(k6.requests.every((r) => r.url === 'http://localhost:3001/reservations'));
});

test('an unknown SCENARIO is refused', async () => {
  await assert.rejects(load({ SCENARIO: 'soak' }), /unknown SCENARIO "soak"/);
});

test('the examples in the header and the README use port 3001', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8') + readFileSync(join(root, 'loadtest', 'README.md'), 'utf8');
  for (const text of [source, readme.split('\n').filter((l) => l.includes('k6')).join('\n')]) {
    const ports = [...text.matchAll(/(?:localhost|127\.0\.0\.1):(\d+)/g)].map((m) => m[1]);
    assert.ok(ports.length > 0);
    assert.deepEqual([...new Set(ports)], ['3001']);
  }
});

test('every variable the READMEs pass with -e is one the script reads', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8') + readFileSync(join(root, 'loadtest', 'README.md'), 'utf8');
  const passed = new Set([...readme.matchAll(/-e ([A-Z_]+)=/g)].map((m) => m[1]));
  assert.ok(passed.size > 0);
  for (const name of passed) assert.match(source, new RegExp(`env\\('${name}'`), `${name} is not read`);
});
