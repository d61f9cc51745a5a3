// k6 load test for reservd (and the original NestJS app it replaces).
//
// Run (k6 is not packaged for Debian; install it from k6.io on the load machine):
//   k6 run loadtest/k6-reservations.js                         # spike, like the original script
//   k6 run -e SCENARIO=spike -e BASE_URL=http://127.0.0.1:3101 -e EVENT_ID=1 -e TICKETS=100 \
//          loadtest/k6-reservations.js
//   k6 run -e SCENARIO=steady -e RATE=500 -e DURATION=30s -e EVENTS=10 -e EVENT_ID=1 \
//          -e USER_START=1 loadtest/k6-reservations.js
//
// Scenarios (SCENARIO, default spike):
//   spike   10,000 VUs share 10,000 iterations (maxDuration 30s); each sends
//           POST ${BASE_URL}/reservation/${EVENT_ID}/${__VU} once, as the original did
//           (so users 1..VUS must exist). 200/201 count as successful bookings.
//           Thresholds: successful_bookings count == TICKETS, p(95) latency < 2 s.
//   steady  constant-arrival-rate: RATE requests/s for DURATION, each
//           POST ${BASE_URL}/reservations {"eventId", "userId"} with a unique user id
//           (USER_START + iteration) and events EVENT_ID .. EVENT_ID+EVENTS-1 in turn.
//
// Environment: BASE_URL (http://localhost:3001), EVENT_ID (1), TICKETS (100),
//   VUS (10000, spike), RATE (100), DURATION (30s), EVENTS (1), USER_START (1),
//   MAX_VUS (steady VU ceiling, default 2*RATE).
// The summary prints total requests, successful bookings, failures and the success rate.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

const env = (name, def) => (__ENV[name] !== undefined && __ENV[name] !== '' ? __ENV[name] : def);
const BASE_URL = env('BASE_URL', 'http://localhost:3001');
const SCENARIO = env('SCENARIO', 'spike');
const EVENT_ID = parseInt(env('EVENT_ID', '1'), 10);
const TICKETS = parseInt(env('TICKETS', '100'), 10);
const VUS = parseInt(env('VUS', '10000'), 10);
const RATE = parseInt(env('RATE', '100'), 10);
const DURATION = env('DURATION', '30s');
const EVENTS = parseInt(env('EVENTS', '1'), 10);
const USER_START = parseInt(env('USER_START', '1'), 10);
const MAX_VUS = parseInt(env('MAX_VUS', String(2 * RATE)), 10);

const successfulBookings = new Counter('successful_bookings');
const failedBookings = new Counter('failed_bookings');

// 409 (sold_out / already_reserved) is an expected answer, not a failed HTTP request.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

const SCENARIOS = {
  spike: {
    executor: 'shared-iterations',
    exec: 'spike',
    vus: VUS,
    iterations: VUS,
    maxDuration: '30s',
  },
  steady: {
    executor: 'constant-arrival-rate',
    exec: 'steady',
    rate: RATE,
    timeUnit: '1s',
    duration: DURATION,
    preAllocatedVUs: Math.min(RATE, 1000),
    maxVUs: Math.max(MAX_VUS, 1),
  },
};

if (!SCENARIOS[SCENARIO]) {
  throw new Error(`unknown SCENARIO "${SCENARIO}" (use spike or steady)`);
}

export const options = {
  scenarios: { [SCENARIO]: SCENARIOS[SCENARIO] },
  thresholds:
    SCENARIO === 'spike'
      ? { successful_bookings: [`count==${TICKETS}`], http_req_duration: ['p(95)<2000'] }
      : { http_req_duration: ['p(95)<2000'] },
};

function record(res) {
  const ok = res.status === 201 || res.status === 200;
  check(res, { 'booked (200/201)': () => ok });
  if (ok) successfulBookings.add(1);
  else failedBookings.add(1);
}

// One booking per VU for user __VU, exactly like the original k6 script.
export function spike() {
  record(http.post(`${BASE_URL}/reservation/${EVENT_ID}/${__VU}`, null, { tags: { name: 'reserve-compat' } }));
}

// Unique user per iteration, events cycled.
export function steady() {
  const i = exec.scenario.iterationInTest;
  const body = JSON.stringify({ eventId: EVENT_ID + (i % EVENTS), userId: USER_START + i });
  record(
    http.post(`${BASE_URL}/reservations`, body, {
      headers: { 'Content-Type': 'application/json' },
      tags: { name: 'reserve' },
    }),
  );
}

function metric(data, name, key) {
  const m = data.metrics[name];
  return m && m.values && m.values[key] !== undefined ? m.values[key] : 0;
}

export function handleSummary(data) {
  const total = metric(data, 'http_reqs', 'count');
  const ok = metric(data, 'successful_bookings', 'count');
  const failed = total - ok;
  const rate = total > 0 ? ((ok / total) * 100).toFixed(2) : '0.00';
  const lines = [
    '',
    `scenario:            ${SCENARIO} (${BASE_URL}, event ${EVENT_ID}${SCENARIO === 'steady' && EVENTS > 1 ? `..${EVENT_ID + EVENTS - 1}` : ''})`,
    `total requests:      ${total}`,
    `successful bookings: ${ok}${SCENARIO === 'spike' ? ` (expected ${TICKETS})` : ''}`,
    `failed bookings:     ${failed}`,
    `success rate:        ${rate}%`,
    `http_req_duration:   p(95) ${metric(data, 'http_req_duration', 'p(95)').toFixed(1)} ms, ` +
      `max ${metric(data, 'http_req_duration', 'max').toFixed(1)} ms`,
    '',
  ];
  return { stdout: lines.join('\n') };
}
