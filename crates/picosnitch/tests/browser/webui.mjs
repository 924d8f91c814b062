// Drives Debian's Chromium through the real web UI and reports, one JSON line per step
// on stdout, what each view showed; crates/picosnitch/tests/e2e_webui.rs compares that
// with the SQLite file. Screenshots go to $ARTIFACTS.
//
// Environment: WEBUI_URL (http://127.0.0.1:PORT/), ARTIFACTS (a directory), MODE
// ("views" or "problems"), and for "views": RANGE_FROM/RANGE_TO (unix seconds),
// BASE_FILTER (a filter in the page's address, f=DIM:VALUE),
// FILTER_EXE (an executable to filter on and drill into), LIVE_EXE (an executable whose
// traffic the test makes once this prints {"step":"live-ready"}; the test then writes
// {"send":N,"recv":N} on stdin).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

const url = process.env.WEBUI_URL;
const artifacts = process.env.ARTIFACTS;
const mode = process.env.MODE || 'views';
mkdirSync(artifacts, { recursive: true });
// Lines the test writes on stdin, one at a time.
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const nextInputLine = async () => {
  const { value, done } = await input.next();
  if (done) throw new Error('stdin ended before the test said what it expected');
  return value;
};
const say = (step, data) => process.stdout.write(JSON.stringify({ step, ...data }) + '\n');
const shot = (page, name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in CI: Chromium's own sandbox needs user namespaces it may not have there.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const problems = [];
const outside = [];

async function newPage(options) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', ...options });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith(url)) outside.push(r.url()); });
  // Any Content-Security-Policy violation is a bug in the page.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  return page;
}

const cards = (page) => page.$$eval('[data-testid^="total-"]', (els) => Object.fromEntries(els.map((e) => [e.dataset.testid.slice(6), Number(e.dataset.value)])));
const tableRows = (page) => page.$$eval('[data-testid="ex-row"]', (trs) => trs.map((tr) => ({
  key: tr.dataset.key,
  text: tr.querySelector('td').textContent,
  ...Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map((td) => [td.dataset.col, Number(td.dataset.value)])),
})));

async function views() {
  // The period, and BASE_FILTER (the test's own network namespace) on every view.
  const range = `range=custom&from=${process.env.RANGE_FROM}&to=${process.env.RANGE_TO}` + (process.env.BASE_FILTER ? `&${process.env.BASE_FILTER}` : '');
  const page = await newPage();

  // Overview: the six totals and the chart.
  await page.goto(`${url}#overview?${range}`);
  await page.waitForSelector('[data-testid="total-recv"]');
  await page.waitForSelector('[data-testid="ov-chart"] svg path');
  say('overview', {
    totals: await cards(page),
    legend: await page.$$eval('[data-testid="legend-item"]', (li) => li.map((l) => ({ text: l.textContent, value: Number(l.dataset.value) }))),
    paths: await page.$$eval('[data-testid="ov-chart"] svg path', (p) => p.length),
    banner: await page.$eval('[data-testid="banner"]', (b) => (b.hidden ? '' : b.textContent)),
  });
  await shot(page, 'overview');
  // The other metric, and the dark theme.
  await page.selectOption('[data-testid="ov-metric"]', 'send');
  await page.waitForFunction(() => location.hash.includes('metric=send'));
  await page.waitForSelector('[data-testid="ov-chart"] svg path');
  await page.click('[data-testid="theme"]');
  await page.click('[data-testid="theme"]');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
  await page.waitForSelector('[data-testid="ov-chart"] svg path');
  say('overview-sent', { totals: await cards(page), legend: await page.$$eval('[data-testid="legend-item"]', (li) => li.map((l) => Number(l.dataset.value))), theme: 'dark' });
  await shot(page, 'overview-dark');
  await page.click('[data-testid="theme"]'); // back to following the system (light here)

  // Explore by executable, sorted by what was received.
  await page.goto(`${url}#explore?${range}&group=exe&sort=recv`);
  await page.waitForSelector('[data-testid="ex-row"]');
  const exes = await tableRows(page);
  const recvs = exes.map((r) => r.recv);
  say('explore', {
    rows: exes,
    sorted: recvs.every((v, i) => i === 0 || recvs[i - 1] >= v),
    totals: await page.$$eval('[data-testid="ex-totals"] td[data-value]', (tds) => tds.map((t) => Number(t.dataset.value))),
  });
  // Sorting by a column header, ascending.
  // (one click at a time: a header drawn before the first click's answer would toggle
  // from the old order.)
  await page.click('[data-testid="sort-send"]');
  await page.waitForSelector('th[aria-sort="descending"] [data-testid="sort-send"]');
  await page.click('[data-testid="sort-send"]');
  await page.waitForFunction(() => location.hash.includes('order=asc'));
  await page.waitForSelector('th[aria-sort="ascending"] [data-testid="sort-send"]');
  await page.waitForSelector('[data-testid="ex-row"]');
  const asc = (await tableRows(page)).map((r) => r.send);
  say('explore-sorted', { ascending: asc.every((v, i) => i === 0 || asc[i - 1] <= v), count: asc.length });

  // A filter: only FILTER_EXE; the view then shows what is inside it (its domains).
  const target = process.env.FILTER_EXE;
  await page.goto(`${url}#explore?${range}&group=exe&sort=recv`);
  await page.waitForSelector(`[data-testid="ex-row"][data-key="${target}"]`);
  await page.click(`[data-testid="ex-row"][data-key="${target}"] [data-testid="filter-is"]`);
  await page.waitForSelector('[data-testid="filter-chip"]');
  await page.waitForFunction(() => location.hash.includes('group=domain'));
  await page.waitForSelector('[data-testid="ex-row"]');
  say('filtered', {
    chips: await page.$$eval('[data-testid="filter-chip"]', (c) => c.map((x) => x.textContent)),
    rows: await tableRows(page),
  });

  // Drill down into FILTER_EXE from the unfiltered table.
  await page.goto(`${url}#explore?${range}&group=exe&sort=recv`);
  await page.waitForSelector(`[data-testid="ex-row"][data-key="${target}"]`);
  await page.click(`[data-testid="ex-row"][data-key="${target}"] td.value`);
  // Read in one go once the pane is complete (it is redrawn when the table reloads).
  let drill;
  try {
    drill = await page.waitForFunction(() => {
      const q = (sel) => document.querySelector(sel);
      const all = (sel, f) => [...document.querySelectorAll(sel)].map(f);
      if (!q('[data-testid="drill-totals"]') || !q('[data-testid="drill-connections"]')) return null;
      const num = (sel) => Number(q(sel).dataset.value);
      const row = (x) => ({ key: x.dataset.key, recv: Number(x.dataset.recv), send: Number(x.dataset.send) });
      return {
        title: q('[data-testid="drill-title"]').textContent,
        recv: num('[data-testid="drill-recv"]'),
        send: num('[data-testid="drill-send"]'),
        events: num('[data-testid="drill-events"]'),
        sparkline: all('[data-testid="drill-spark"] path', () => 1).length,
        users: all('[data-testid="drill-user-row"]', row),
        addresses: all('[data-testid="drill-raddr-row"]', row),
        domains: all('[data-testid="drill-domain-row"]', () => 1).length,
        connections: all('[data-testid="drill-conn"]', (x) => x.dataset.exe),
        partial: q('[data-testid="drill-partial"]') !== null,
      };
    });
  } catch (e) {
    const pane = await page.$eval('[data-testid="drill"]', (el) => `hidden=${el.hidden} text=${el.textContent}`);
    throw new Error(`${e.message}\ndrill pane: ${pane}\naddress: ${page.url()}`);
  }
  say('drilldown', await drill.jsonValue());
  await shot(page, 'explore-drilldown');

  // A phone-sized screen: nothing wider than it.
  const phone = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await phone.goto(`${url}#overview?${range}`);
  await phone.waitForSelector('[data-testid="ov-chart"] svg path');
  const overviewFits = await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
  await shot(phone, 'phone-overview');
  await phone.goto(`${url}#explore?${range}&group=exe&dg=exe&dk=${encodeURIComponent(target)}`);
  await phone.waitForSelector('[data-testid="drill-totals"]');
  const exploreFits = await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
  await shot(phone, 'phone-explore');
  say('phone', { overviewFits, exploreFits });

  // Live: new traffic appears without reloading.
  await page.goto(`${url}#live`);
  await page.waitForSelector('[data-testid="live-status"].ok', { timeout: 20000 });
  say('live-ready', { status: await page.$eval('[data-testid="live-status"]', (e) => e.textContent) });
  const live = process.env.LIVE_EXE;
  // The filter box: the server then picks the busiest programs among those matching,
  // so this one is listed however busy the machine is.
  await page.fill('[data-testid="live-find"]', live.split('/').pop());
  try {
    await page.waitForSelector(`[data-testid="live-proc"][data-exe="${live}"]`, { timeout: 60000 });
  } catch (e) {
    const status = await page.$eval('[data-testid="live-status"]', (el) => el.textContent);
    const procs = await page.$$eval('[data-testid="live-proc"]', (trs) => trs.map((t) => t.dataset.exe));
    throw new Error(`${e.message}\nlive status: ${status}\nprocesses shown: ${procs.join(', ')}`);
  }
  // The test says on stdin what the program sent and received once its exchange is
  // over; wait until the per-process summary has all of it (the list of single updates
  // may skip some when the machine is busy; the summary never does).
  const expected = JSON.parse(await nextInputLine());
  await page.waitForFunction(({ exe, send, recv }) => {
    const tr = document.querySelector(`[data-testid="live-proc"][data-exe="${exe}"]`);
    return tr && Number(tr.dataset.send) >= send && Number(tr.dataset.recv) >= recv;
  }, { exe: live, ...expected }, { timeout: 30000 });
  await page.waitForTimeout(1000);
  const proc = await page.$eval(`[data-testid="live-proc"][data-exe="${live}"]`, (tr) => ({ recv: Number(tr.dataset.recv), send: Number(tr.dataset.send), text: tr.textContent }));
  const shown = await page.$$eval('[data-testid="live-proc"]', (trs) => trs.map((t) => t.dataset.exe));
  say('live', { proc, filtered: shown, events: await page.$$eval('[data-testid="live-event"]', (r) => r.map((x) => ({ exe: x.dataset.exe, kind: x.dataset.kind }))) });
  await shot(page, 'live');
}

async function problemsView() {
  const page = await newPage();
  await page.goto(`${url}#overview?range=all`);
  await page.waitForSelector('[data-testid="banner"]:not([hidden])');
  const overview = await page.$eval('[data-testid="banner"]', (b) => ({ kind: b.dataset.kind, text: b.textContent }));
  await shot(page, 'problem-overview');
  await page.goto(`${url}#live`);
  await page.waitForSelector('[data-testid="live-status"].bad');
  await page.waitForFunction(() => document.querySelector('[data-testid="live-status"]').dataset.state === 'no-daemon');
  const live = await page.$eval('[data-testid="live-status"]', (e) => e.textContent);
  await shot(page, 'problem-live');
  say('problems', { overview, live });
}

try {
  if (mode === 'problems') await problemsView(); else await views();
  say('done', { problems, outside });
} catch (e) {
  say('failed', { error: String(e && e.stack || e), problems, outside });
  process.exitCode = 1;
} finally {
  await browser.close();
}
