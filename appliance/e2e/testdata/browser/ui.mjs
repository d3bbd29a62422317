// Drives Debian's chromium (headless, through playwright-core) through the
// appliance's web UI for appliance/e2e/ui_browser_test.go.
//
//   node ui.mjs status|lockout
//
// Environment: OUTPOST_URL (the node's http://host:port), OUT_DIR (where
// screenshots go), CHROMIUM (default /usr/bin/chromium), ADMIN_USER and
// ADMIN_PASSWORD. Each step prints one JSON line on stdout; the test
// answers a {"step":"await-register"} with one line on stdin once a phone
// has registered. Anything unexpected exits non-zero with the reason on
// stderr.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const base = process.env.OUTPOST_URL;
const outDir = process.env.OUT_DIR;
const user = process.env.ADMIN_USER || 'admin';
const password = process.env.ADMIN_PASSWORD;
const scenario = process.argv[2];

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const started = Date.now();
const report = (step, fields = {}) => console.log(JSON.stringify({ step, ...fields, ms: Date.now() - started }));
const fail = (why) => { throw new Error(why); };

// The page's CSP violations: there must be none.
const cspErrors = [];

async function shot(page, name) {
  await page.screenshot({ path: join(outDir, name + '.png'), fullPage: true });
}

// submit clicks a form's button and waits for the answer to the POST and
// for a fresh element matching selector (the old page's copy is marked
// first, so with or without htmx the new one is what is found).
async function submit(page, button, path, selector) {
  await page.evaluate((sel) => document.querySelectorAll(sel).forEach((e) => e.setAttribute('data-old', '')), selector);
  const [resp] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST'),
    page.click(button),
  ]);
  await page.waitForSelector(selector + ':not([data-old])', { timeout: 10000 });
  return resp;
}

async function signIn(page, name, pw) {
  await page.fill('#username', name);
  await page.fill('#password', pw);
  return submit(page, '#signin button[type=submit]', '/login', '#mode, #signin-error, #refused-message');
}

async function status(page) {
  await page.goto(base + '/');
  report('opened');
  if (new URL(page.url()).pathname !== '/login') fail('signed out, / did not lead to /login but to ' + page.url());
  await shot(page, 'login');
  report('login-shot');
  await signIn(page, user, password);
  report('submitted');
  if (!(await page.$('#mode'))) fail('sign-in did not reach the status page: ' + (await page.textContent('main')));
  const mode = (await page.textContent('#mode')).trim();
  const before = Number(await page.textContent('#registrations'));
  // Live once the first event has been swapped in.
  await page.waitForFunction(() => document.querySelector('#live-state').textContent.startsWith('Live:'), null, { timeout: 10000 });
  await page.evaluate(() => { window.outpostNoReload = true; });
  report('signed-in', { mode, registrations: before, htmx: await page.evaluate(() => typeof window.htmx === 'object') });

  report('await-register');
  await lines.next();
  await page.waitForFunction((n) => Number(document.querySelector('#registrations').textContent) > n, before, { timeout: 15000 });
  const after = Number(await page.textContent('#registrations'));
  const reloaded = !(await page.evaluate(() => window.outpostNoReload === true));
  await shot(page, 'status');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'status-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
  report('registered', { registrations: after, reloaded });

  // Keyboard: the first Tab reaches the skip link, which moves focus to main.
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement.textContent.trim());
  await page.keyboard.press('Enter');
  const afterSkip = await page.evaluate(() => document.activeElement.id);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), button, select, textarea')]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).length);
  report('keyboard', { first, afterSkip, unlabelled });

  await pages(page);

  // A form without its CSRF token is refused and the session survives.
  await page.evaluate(() => document.querySelector('#logout input[name=csrf_token]').remove());
  const refused = await submit(page, '#logout button[type=submit]', '/logout', '#refused-message');
  const message = (await page.textContent('#refused-message')).trim();
  await shot(page, 'csrf-refused');
  await page.goto(base + '/');
  const stillSignedIn = !!(await page.$('#mode'));
  report('csrf', { status: refused.status(), message, stillSignedIn });

  await submit(page, '#logout button[type=submit]', '/logout', '#signin');
  report('signed-out', { path: new URL(page.url()).pathname });
}

// Every other page: reached from the navigation bar, marked current,
// showing its recognisable element, every control labelled; a screenshot
// of each.
const otherPages = [
  { path: '/phones', name: 'phones', sel: '#bindings tr[data-user="alice"]' },
  { path: '/calls', name: 'calls', sel: '#history' },
  { path: '/sdgs', name: 'sdgs', sel: 'section[data-sdg="sdg-frontdesk"] .state' },
  { path: '/cluster', name: 'cluster', sel: '#members tr[data-member]' },
  { path: '/settings', name: 'settings', sel: '#settings-title' },
];

async function pages(page) {
  const seen = {};
  for (const p of otherPages) {
    await page.evaluate(() => document.querySelectorAll('main').forEach((e) => e.setAttribute('data-old', '')));
    await page.click(`nav a[href="${p.path}"]`);
    await page.waitForSelector('main:not([data-old]) ' + p.sel, { timeout: 10000 });
    const info = await page.evaluate(() => ({
      path: location.pathname,
      current: [...document.querySelectorAll('nav a[aria-current="page"]')].map((a) => a.getAttribute('href')),
      unlabelled: [...document.querySelectorAll('input:not([type=hidden]), button, select, textarea')]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).length,
    }));
    if (p.path === '/phones') {
      // The search works without JavaScript's help: a GET form.
      await page.fill('#q', 'nobody-by-that-name');
      await page.evaluate(() => document.querySelectorAll('main').forEach((e) => e.setAttribute('data-old', '')));
      await page.press('#q', 'Enter');
      await page.waitForSelector('main:not([data-old]) #bindings', { timeout: 10000 });
      info.searchEmpty = (await page.$$('#bindings tr[data-user]')).length === 0;
      await page.goto(base + '/phones');
      await page.waitForSelector(p.sel);
    }
    if (p.path === '/sdgs' || p.path === '/calls') {
      await page.waitForFunction(() => document.querySelector('[data-live-state]').textContent.startsWith('Live:'), null, { timeout: 10000 });
      info.live = true;
    }
    if (p.path === '/settings') info.config = !!(await page.$('#config'));
    await shot(page, p.name);
    seen[p.name] = info;
  }
  report('pages', seen);
}

async function lockout(page) {
  await page.goto(base + '/login');
  const messages = [];
  for (let i = 1; i <= 5; i++) {
    const resp = await signIn(page, user, 'wrong-password-' + i);
    messages.push({ status: resp.status(), text: (await page.textContent('#signin-error')).trim() });
  }
  const resp = await signIn(page, user, password);
  const sixth = { status: resp.status(), text: (await page.textContent('#signin-error')).trim(), signedIn: !!(await page.$('#mode')) };
  await shot(page, 'lockout');
  report('lockout', { messages, sixth });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // --no-sandbox: the tests run as root. The rest keep chromium off the
  // network (this machine's closed network refuses its background calls).
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  headless: true,
});
let code = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  if (scenario === 'status') await status(page);
  else if (scenario === 'lockout') await lockout(page);
  else fail('unknown scenario ' + scenario);
  report('done', { cspErrors });
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
