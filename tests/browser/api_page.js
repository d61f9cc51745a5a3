#!/usr/bin/env node
// reservd's /api in a real browser (Debian's headless Chromium, driven by
// puppeteer-core): the page loads with no error, no Content-Security-Policy
// violation and no request to another origin; every operation of
// /api/openapi.json is listed; "Try it out" + "Execute" on GET /events shows
// a 200 from this server. Screenshots go to LOG_DIR.
//   node api_page.js BASE_URL LOG_DIR CHROMIUM [TIMEOUT_MS]
// Prints "ok - ..." / "FAIL - ..." lines; exits 1 if anything failed.
'use strict';
const path = require('path');
const puppeteer = require('puppeteer-core');

const [base, logDir, chromium, timeoutArg] = process.argv.slice(2);
if (!base || !logDir || !chromium) {
  console.log('usage: node api_page.js BASE_URL LOG_DIR CHROMIUM [TIMEOUT_MS]');
  process.exit(2);
}
const timeout = Number(timeoutArg || 60000);
const origin = new URL(base).origin;
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} - ${what}`);
  if (!ok) failures++;
  return ok;
}

// The operations the document declares, as the page shows them: "GET /events".
async function documentedOperations() {
  const res = await fetch(`${base}/api/openapi.json`);
  const doc = await res.json();
  const ops = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options']) {
      if (item[m]) ops.push(`${m.toUpperCase()} ${p}`);
    }
  }
  return ops.sort();
}

async function run(browser) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.setDefaultTimeout(timeout);
  const problems = [];
  const foreign = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== origin) foreign.push(r.url());
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure().errorText})`));
  // CSP violations are events in the page: collect them from the start.
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
  });

  const resp = await page.goto(`${base}/api`, { waitUntil: 'networkidle0' });
  check(resp.status() === 200, `GET /api answers ${resp.status()}`);
  check(/default-src 'self'/.test(resp.headers()['content-security-policy'] || ''),
    'the page carries a Content-Security-Policy');
  await page.waitForSelector('.opblock .opblock-summary-path');
  const title = await page.$eval('.info .title', (e) => e.textContent.trim()).catch(() => '');
  check(/reservd/.test(title), `the document's title is shown ("${title}")`);

  const listed = (await page.$$eval('.opblock', (els) => els.map((e) => {
    const m = e.querySelector('.opblock-summary-method');
    const p = e.querySelector('.opblock-summary [data-path]');   // deprecated ones too
    return `${m ? m.textContent.trim() : '?'} ${p ? p.getAttribute('data-path') : '?'}`;
  }))).sort();
  const documented = await documentedOperations();
  const missing = documented.filter((o) => !listed.includes(o));
  check(documented.length > 10 && missing.length === 0,
    `all ${documented.length} documented operations are listed (page shows ${listed.length})` +
    (missing.length ? `; missing: ${missing.join(', ')}` : ''));
  await page.screenshot({ path: path.join(logDir, 'api-operations.png') });
  console.log(`screenshot: ${path.join(logDir, 'api-operations.png')}`);

  // Open GET /events, "Try it out", "Execute".
  const block = await page.waitForSelector('.opblock-get[id$="-listEvents"]');
  await (await block.$('.opblock-summary-control')).click();
  const tryOut = await block.waitForSelector('button.try-out__btn');
  await tryOut.click();
  const execute = await block.waitForSelector('button.execute');
  await execute.click();
  const status = await block.waitForSelector('.live-responses-table .response .response-col_status');
  const code = (await status.evaluate((e) => e.textContent)).trim();
  check(/^200\b/.test(code), `"Try it out" + "Execute" on GET /events shows ${code}`);
  const url = await block.$eval('.request-url pre', (e) => e.textContent.trim()).catch(() => '');
  check(url.startsWith(`${origin}/events`), `the request went to this server (${url})`);
  const body = await block.$eval('.live-responses-table .response-col_description pre',
    (e) => e.textContent).catch(() => '');
  check(/"items"/.test(body) && /Launch/.test(body), 'the response body shows the seeded event');
  await status.evaluate((e) => e.scrollIntoView({ block: 'center' }));
  await page.screenshot({ path: path.join(logDir, 'api-try-it-out.png') });
  console.log(`screenshot: ${path.join(logDir, 'api-try-it-out.png')}`);

  // The schemas too: every model expanded, each operation's "Schema" tab shown.
  await (await page.$('#operations-users-createUser .opblock-summary-control')).click();
  for (const sel of ['section.models .models-control', 'section.models .model-box-control',
    '#operations-users-createUser .tablinks']) {
    for (const el of await page.$$(sel)) await el.click().catch(() => {});
  }
  await new Promise((r) => setTimeout(r, 500));
  const models = await page.$$eval('section.models .model-container', (els) => els.length);
  check(models > 5, `the schemas are shown (${models})`);

  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, `no Content-Security-Policy violation${csp.length ? `: ${csp.join('; ')}` : ''}`);
  // ... and the policy is really in force: an inline script is refused and reported.
  await page.addScriptTag({ content: 'window.__inline = 1' }).catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  const inline = await page.evaluate(() => ({ ran: window.__inline === 1, seen: window.__csp.slice() }));
  check(!inline.ran && inline.seen.some((v) => /^script-src/.test(v)),
    `an inline script is blocked and reported (${inline.seen.join('; ') || 'nothing reported'})`);
  problems.splice(0, problems.length, ...problems.filter((p) => !/Content Security Policy/.test(p)));
  check(foreign.length === 0, `no request left ${origin}${foreign.length ? `: ${foreign.join(', ')}` : ''}`);
  check(problems.length === 0, `no page error, console error or failed request` +
    (problems.length ? `: ${problems.join('; ')}` : ''));
}

(async () => {
  let browser;
  try {
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      timeout,
      protocolTimeout: timeout * 2,
      // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
    await run(browser);
  } catch (e) {
    check(false, `browser run: ${e.stack || e}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  console.log(`browser: ${failures ? 'FAILED' : 'OK'}`);
  process.exit(failures ? 1 : 0);
})();
