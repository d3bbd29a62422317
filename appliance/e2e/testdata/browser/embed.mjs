// Drives Debian's chromium (headless, through playwright-core) through the
// call widget framed by two host pages, for
// appliance/e2e/embed_browser_test.go.
//
//   node embed.mjs
//
// Environment: HOST_URL (a host page whose origin the snapshot allows),
// OTHER_URL (a host page on an origin it does not), SIP_USER and
// SIP_PASSWORD (who signs in to the widget), DIAL (what the host asks the
// widget to call), OUT_DIR (screenshots), CHROMIUM. The host pages record
// every message they receive in window.received and answer the widget's
// requests. Each step prints one JSON line on stdout; anything unexpected
// exits non-zero with the reason on stderr.
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const hostURL = process.env.HOST_URL;
const otherURL = process.env.OTHER_URL;
const outDir = process.env.OUT_DIR;
const sipUser = process.env.SIP_USER;
const sipPassword = process.env.SIP_PASSWORD;
const dial = process.env.DIAL;

const started = Date.now();
const report = (step, fields = {}) => console.log(JSON.stringify({ step, ...fields, ms: Date.now() - started }));

// How long a page whose frame is refused is watched for messages: the one
// bounded wait (there is no event for "nothing happened").
const silenceMs = 5000;

const cspErrors = [];

const received = (page) => page.evaluate(() => window.received);

// waitForMessage waits until the host has received a message of one of
// types, after the first from, and returns it.
async function waitForMessage(page, wanted, timeout, from = 0) {
  const h = await page.waitForFunction(([ts, n]) => window.received.slice(n).find((m) => ts.includes(m.type)), [wanted, from], { timeout });
  return h.jsonValue();
}

const count = (page) => page.evaluate(() => window.received.length);

const unlabelled = (frame) => frame.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), button, select, textarea')]
  .filter((e) => e.offsetParent !== null)
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).length);

async function widgetShot(page, name) {
  await (await page.$('#widget')).screenshot({ path: join(outDir, name + '.png') });
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
  // The page on an origin the snapshot does not allow, opened first: it is
  // watched while the rest runs.
  const other = await context.newPage();
  await other.goto(otherURL);
  const otherOpened = Date.now();
  report('other-opened');

  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  await page.goto(hostURL);
  await waitForMessage(page, ['zcc-init-config-request'], 15000);
  const frame = await (await page.waitForSelector('#widget')).contentFrame();
  await frame.waitForSelector('#signin:not([hidden])');
  report('loaded', { received: await received(page) });
  await widgetShot(page, 'embed-signin');
  const signinUnlabelled = await unlabelled(frame);

  // Sign in with the keyboard only.
  await frame.focus('#username');
  await page.keyboard.type(sipUser);
  await page.keyboard.press('Tab');
  await page.keyboard.type(sipPassword);
  await page.keyboard.press('Enter');
  await frame.waitForSelector('#app:not([hidden])', { timeout: 15000 });
  await frame.waitForFunction(() => document.getElementById('connection').textContent !== 'Connecting…', null, { timeout: 15000 });
  const connection = await frame.textContent('#connection');
  const me = (await frame.textContent('#me')).trim();
  const appUnlabelled = await unlabelled(frame);
  const cookies = await context.cookies();

  // The dial field searches the host's contacts; a match is shown as text.
  await frame.fill('#dial', 'bo');
  await waitForMessage(page, ['zcc-contact-search-event'], 5000);
  await frame.waitForSelector('#matches:not([hidden]) button');
  const match = await frame.evaluate(() => {
    const b = document.querySelector('#matches button');
    return { text: b.textContent, elements: b.children.length };
  });
  await frame.fill('#dial', '');
  report('signed-in', { me, connection, signinUnlabelled, appUnlabelled, match, cookies: cookies.length });

  // A request the widget refuses: zcc-error naming the field.
  let before = await count(page);
  await page.evaluate(() => window.toWidget({ type: 'zcc-send-dtmf', data: { engagementId: 'e-x', channelType: 'voice', requestId: '9b7f2c1a-3e4d-4f8a-9b2c-5d6e7f8a9b0c', digit: '12' } }));
  const invalid = await waitForMessage(page, ['zcc-error'], 10000, before);
  report('invalid', { error: invalid });

  // Click-to-call from the host.
  before = await count(page);
  await page.evaluate((phone) => window.toWidget({ type: 'onclicktoact', data: { phone, id: 'c-bob', name: 'Bob Baker', email: 'bob@crm.example', userEntity: 'contact' } }), dial);
  const first = await waitForMessage(page, ['zcc-call-connected', 'zcc-error'], 30000, before).catch(() => null);
  if (first && first.type === 'zcc-call-connected') {
    await frame.waitForSelector('#calls li.call[data-state="connected"]', { timeout: 10000 });
    await widgetShot(page, 'embed');
    const callUnlabelled = await unlabelled(frame);
    await waitForMessage(page, ['zcc-phone-call-log'], 30000, before);
    report('call', { received: await received(page), callUnlabelled });
  } else {
    report('call', { received: await received(page), refused: first });
  }

  // The refused origin's page: its frames never loaded the widget, and it
  // received nothing, watched for silenceMs at least.
  const left = silenceMs - (Date.now() - otherOpened);
  if (left > 0) await other.waitForTimeout(left);
  const frames = await other.evaluate(() => [...document.querySelectorAll('iframe')].map((f) => f.id));
  const widgetFrames = other.frames().filter((f) => f !== other.mainFrame()).map((f) => f.url());
  const loaded = [];
  for (const f of other.frames()) {
    if (f === other.mainFrame()) continue;
    loaded.push(await f.evaluate(() => !!document.getElementById('widget')).catch(() => false));
  }
  report('other', { received: await received(other), frames, widgetFrames, loaded, watchedMs: Date.now() - otherOpened });
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
  await run(browser);
  report('done', { cspErrors });
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
