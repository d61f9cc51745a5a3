// k6 load test for reservd (and the original NestJS app it replaces).
//
// Run (k6 is not packaged for Debian; install it from k6.io on the load machine):
//   k6 run loadtest/k6-reservations.js                         # spike, like the original script
//   k6 run -e SCENARIO=spike -e BASE_URL=http://127.0.0.1:3001 -e EVENT_ID=1 -e TICKETS=100 \
//          -e USER_START=1 loadtest/k6-reservations.js
//   k6 run -e SCENARIO=steady -e RATE=500 -e DURATION=30s -e EVENTS=10 -e EVENT_ID=1 \
//          -e USER_START=1 loadtest/k6-reservations.js
// With reservd-seed --export (see the README's load-testing section), pass its ids:
//   k6 run -e EVENT_ID="$EVENT_ID" -e USER_START="$USER_START" -e VUS="$USER_COUNT" loadtest/k6-reservations.js
// With reservd's access control on, add -e TOKEN="$(cat .data/admin-token)" (an admin
// token: it may reserve for any user); --auth off and the original app need none.
//
// Scenarios (SCENARIO, default spike):
//   spike   per-vu-iterations: VUS (10,000) VUs run exactly one iteration each
//           (maxDuration 30s), POST ${BASE_URL}/reservation/${EVENT_ID}/${USER_START + __VU - 1},
//           so every user is sent once, as the original meant (users USER_START..
//           USER_START+VUS-1 must exist). 200/201 count as successful bookings.
//           Thresholds: successful_bookings count == TICKETS, failed_bookings count == 0,
//           p(95) latency < 2 s.
//   steady  constant-arrival-rate: RATE requests/s for DURATION, each
//           POST ${BASE_URL}/reservations {"eventId", "userId"} with a unique user id
//           (USER_START + iteration) and events EVENT_ID .. EVENT_ID+EVENTS-1 in turn.
//
// Every answer is one of three counters:
//   successful_bookings  200/201: a ticket
//   refused_bookings     409 (sold_out, already_reserved): the expected "no", not a failure
//   failed_bookings      anything else (404 for a missing user or event, 5xx, no answer)
// booking_success is the rate of successful ones among all answers.
// k6 prints its own end-of-test summary (every metric above, and each threshold
// passed or failed); this script adds no handleSummary, which would replace it.
//
// Environment: BASE_URL (http://localhost:3001), EVENT_ID (1), TICKETS (100),
//   VUS (10000, spike), RATE (100), DURATION (30s), EVENTS (1), USER_START (1),
//   MAX_VUS (steady VU ceiling, default 2*RATE).

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';

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
// An admin token (reservd's --auth token: .data/admin-token); unset for the
// original app or reservd --auth off, where the requests carry none.
const TOKEN = env('TOKEN', '');
const AUTH = TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {};

const successfulBookings = new Counter('successful_bookings');
const refusedBookings = new Counter('refused_bookings');
const failedBookings = new Counter('failed_bookings');
const bookingSuccess = new Rate('booking_success');

// 409 (sold_out / already_reserved) is an expected answer, not a failed HTTP request.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

const SCENARIOS = {
  spike: {
    // shared-iterations lets a fast VU take a second iteration (and so send
    // its user twice); per-vu-iterations gives each VU exactly one.
    executor: 'per-vu-iterations',
    exec: 'spike',
    vus: VUS,
    iterations: 1,
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
      ? {
          successful_bookings: [`count==${TICKETS}`],
          failed_bookings: ['count==0'],
          http_req_duration: ['p(95)<2000'],
        }
      : { failed_bookings: ['count==0'], http_req_duration: ['p(95)<2000'] },
};

// Every answer adds to all three counters (0 or 1), so each exists, and its
// threshold is evaluated, even when nothing fell into it.
function record(res) {
  const ok = res.status === 201 || res.status === 200;
  const refused = res.status === 409;
  check(res, { 'booked (200/201) or refused (409)': () => ok || refused });
  successfulBookings.add(ok ? 1 : 0);
  refusedBookings.add(refused ? 1 : 0);
  failedBookings.add(ok || refused ? 0 : 1);
  bookingSuccess.add(ok);
}

// One booking per VU, user USER_START + __VU - 1 (the original: user __VU).
export function spike() {
  const user = USER_START + __VU - 1;
  record(
    http.post(`${BASE_URL}/reservation/${EVENT_ID}/${user}`, null, {
      headers: { ...AUTH },
      tags: { name: 'reserve-compat' },
    }),
  );
}

// Unique user per iteration, events cycled.
export function steady() {
  const i = exec.scenario.iterationInTest;
  const body = JSON.stringify({ eventId: EVENT_ID + (i % EVENTS), userId: USER_START + i });
  record(
    http.post(`${BASE_URL}/reservations`, body, {
      headers: { 'Content-Type': 'application/json', ...AUTH },
      tags: { name: 'reserve' },
    }),
  );
}
