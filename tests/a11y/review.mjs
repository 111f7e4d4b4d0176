// Drives the review workspace in Debian's headless Chromium, as
// reviewers would, for tests/it/review.rs. Usage:
//   node review.mjs BASE_URL ISSUER_URL MAX_AGE_SECONDS SHOTS_DIR [idle]
// (`idle`: only log in, wait past the idle time, and try the old session)
// Logs in at the test's OpenID provider (oidc.mjs) as several users, in
// separate browser profiles, and prints one JSON object of what each saw.
// Every page visited is checked with axe-core (WCAG 2.1 A and AA) and for
// sideways scrolling at 320 CSS pixels and at 200% zoom.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const [base, issuer, maxAgeText, shots, scenario] = process.argv.slice(2);
const maxAge = Number(maxAgeText);
const facts = { pages: [], requests: [], scripts: 0, dialogs: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function check(page, label) {
  // The pages' own policy allows no script at all, which is the point:
  // axe is added through the DevTools protocol, past it.
  const url = page.url();
  // No page holds a script of its own (a record's text is never markup).
  facts.scripts += await page.$$eval('script', (s) => s.length);
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  const overflow = async (width, height, scale) => {
    await page.setViewport({ width, height, deviceScaleFactor: scale });
    return page.evaluate(() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth));
  };
  const narrow = await overflow(320, 640, 1);
  const zoom = await overflow(640, 400, 2);
  if (shots) {
    const name = label.replace(/[^a-z0-9]+/gi, '-');
    await page.setViewport({ width: 1280, height: 800, deviceScaleFactor: 1 });
    await page.screenshot({ path: path.join(shots, `${name}.png`) });
    await page.setViewport({ width: 320, height: 640, deviceScaleFactor: 1 });
    await page.screenshot({ path: path.join(shots, `${name}-phone.png`) });
  }
  await page.setViewport({ width: 1280, height: 800, deviceScaleFactor: 1 });
  facts.pages.push({
    label, url, narrow, zoom,
    violations: result.violations.map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.html) })),
  });
}

async function user(browser) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  // The policy is bypassed so that axe can run: a script a record smuggled
  // in would run too, and its dialog is counted.
  await page.setBypassCSP(true);
  page.on('dialog', async (d) => {
    facts.dialogs.push(d.message());
    await d.dismiss();
  });
  await page.setViewport({ width: 1280, height: 800, deviceScaleFactor: 1 });
  // No page of the workspace asks for anything but the workspace and
  // the identity provider.
  page.on('request', (r) => {
    const u = r.url();
    const from = r.frame() ? r.frame().url() : '';
    if (from.startsWith(base) && !u.startsWith(base) && !u.startsWith(issuer) && !u.startsWith('data:')) {
      facts.requests.push(u);
    }
  });
  if (process.env.DEBUG) {
    page.on('response', (r) => console.error(r.status(), r.url(), JSON.stringify(r.headers()['set-cookie'] || '')));
    page.on('requestfailed', (r) => console.error('FAILED', r.url(), r.failure() && r.failure().errorText));
  }
  return page;
}

async function go(page, url) {
  await page.goto(url.startsWith('http') ? url : base + url, { waitUntil: 'load' });
}

async function submit(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
}

// At the provider's login page: log in as `who`, consent if asked.
async function idp(page, who) {
  await page.waitForSelector('input[name=login]');
  await page.type('input[name=login]', who);
  await page.type('input[name=password]', 'any password');
  await submit(page, 'button[type=submit]');
  if (await page.$('input[name=prompt][value=consent]')) {
    await submit(page, 'button[type=submit]');
  }
}

async function login(page, who, where = '/') {
  await go(page, where);
  await idp(page, who);
}

async function fresh(page, who, back) {
  await go(page, `/login?fresh=1&back=${encodeURIComponent(back)}`);
  await idp(page, who);
}

const text = (page) => page.evaluate(() => document.querySelector('main').innerText);
const title = (page) => page.evaluate(() => document.querySelector('h1').innerText);

// Opens every proof record, page and changed sentence of a version page.
async function openAll(page, version, label) {
  await go(page, version);
  const links = await page.$$eval('main a', (as) => as.map((a) => a.getAttribute('href')));
  const items = links.filter((h) => /\/(record\/\d+(\/page\/\d+)?|sentence\/\d+)$/.test(h));
  let first = { record: true, page: true, sentence: true };
  for (const href of items) {
    await go(page, href);
    const kind = href.includes('/page/') ? 'page' : href.includes('/sentence/') ? 'sentence' : 'record';
    if (label && first[kind]) {
      first[kind] = false;
      await check(page, `${label} ${kind}`);
    }
  }
  return items.length;
}

// Decides: the form of `kind` on the version page, then the words, then sign.
async function decide(page, version, kind, reason) {
  await go(page, version);
  if (reason !== undefined) {
    await page.type(`form:has(input[value=${kind}]) textarea`, reason);
  }
  await submit(page, `form:has(input[value=${kind}]) button`);
  return { title: await title(page), text: await text(page) };
}

async function sign(page) {
  await page.click('input[name=confirm]');
  await submit(page, 'main form button');
  return { title: await title(page), text: await text(page) };
}

// Moves the focus with the Tab key alone until it is on `selector`.
async function tabTo(page, selector) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((sel) => document.activeElement && document.activeElement.matches(sel), selector)) {
      return true;
    }
  }
  throw new Error(`the Tab key never reaches ${selector} on ${page.url()}`);
}

// Signs with the keyboard alone: Tab to the box, Space, Tab to the
// button, Enter.
async function signByKeyboard(page) {
  await tabTo(page, 'input[name=confirm]');
  await page.keyboard.press('Space');
  await tabTo(page, 'main form button');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')]);
  return { title: await title(page), text: await text(page) };
}

async function post(page, pathname, fields) {
  const cookies = await page.cookies(base);
  const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const res = await fetch(base + pathname, {
    method: 'POST', redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, text: await res.text() };
}

const csrf = (page) => page.$eval('input[name=csrf]', (i) => i.value);

// Logs in, waits `seconds`, and asks for the queue with the session's
// cookie: an idle session has ended.
async function idle(browser, seconds) {
  const page = await user(browser);
  await login(page, 'priya');
  const cookie = (await page.cookies(base)).filter((c) => c.name === '__Host-lp_session').map((c) => `${c.name}=${c.value}`).join('; ');
  const fresh = await fetch(base + '/', { redirect: 'manual', headers: { cookie } });
  facts.beforeIdle = fresh.status;
  await sleep(seconds * 1000);
  const stale = await fetch(base + '/', { redirect: 'manual', headers: { cookie } });
  facts.afterIdle = { status: stale.status, location: stale.headers.get('location') };
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'letterpress-review-'));
  if (shots) fs.mkdirSync(shots, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    if (scenario === 'idle') {
      await idle(browser, Number(maxAgeText));
      console.log(JSON.stringify(facts));
      return;
    }
    // The reviewer: the queue, the version, approving too early, opening
    // everything, logging in again, approving.
    const priya = await user(browser);
    await login(priya, 'priya');
    await check(priya, 'queue');
    facts.queue = await text(priya);
    const v5 = '/v/welcome-letter/5';
    await go(priya, v5);
    await check(priya, 'version');
    facts.version = await text(priya);
    facts.early = await decide(priya, v5, 'approved');
    facts.opened = await openAll(priya, v5, 'welcome');
    const earlier = (await priya.cookies(base)).filter((c) => c.name === '__Host-lp_session').map((c) => `${c.name}=${c.value}`).join('; ');
    await fresh(priya, 'priya', v5);
    facts.earlierSession = (await fetch(base + '/', { redirect: 'manual', headers: { cookie: earlier } })).status;
    // From the queue to the version with the keyboard alone.
    await go(priya, '/');
    await tabTo(priya, `a[href="${v5}"]`);
    await Promise.all([priya.waitForNavigation({ waitUntil: 'load' }), priya.keyboard.press('Enter')]);
    facts.keyboardVersion = new URL(priya.url()).pathname;
    facts.confirm = await decide(priya, v5, 'approved');
    await check(priya, 'confirm');
    facts.approved = await signByKeyboard(priya);
    await check(priya, 'recorded');
    facts.cookies = (await priya.cookies(base)).map((c) => ({ name: c.name, secure: c.secure, httpOnly: c.httpOnly, sameSite: c.sameSite }));

    // A comment, whose markup shows as text.
    await go(priya, v5);
    await priya.type('#comment', 'REV-1 <b>checked</b> the closing line');
    await submit(priya, 'form[action$="/comment"] button');
    facts.commented = await text(priya);

    // Sam submits in the browser, and may not approve what he submitted
    // on the command line.
    const sam = await user(browser);
    await login(sam, 'sam');
    facts.authorQueue = await text(sam);
    await fresh(sam, 'sam', '/v/payment-reminder/5');
    await decide(sam, '/v/payment-reminder/5', 'submitted');
    facts.submitted = await sign(sam);
    const v6 = '/v/welcome-letter/6';
    await openAll(sam, v6);
    await fresh(sam, 'sam', v6);
    facts.author = await decide(sam, v6, 'approved');
    await check(sam, 'refused');

    // A user with no role sees nothing to decide.
    const nobody = await user(browser);
    await login(nobody, 'nobody');
    facts.nobody = await text(nobody);
    await check(nobody, 'queue without a role');

    // A rejection needs its reason; a POST without the CSRF token is
    // refused; a stale login logs in again before signing.
    const jide = await user(browser);
    await login(jide, 'jide', '/v/welcome-letter/6');
    const token = await csrf(jide);
    facts.noReason = await post(jide, '/v/welcome-letter/6/decide', { csrf: token, kind: 'rejected', reason: ' ' });
    facts.badCsrf = await post(jide, '/v/welcome-letter/6/decide', { csrf: 'not-the-token', kind: 'rejected', reason: 'x' });
    facts.noCsrf = await post(jide, '/v/welcome-letter/6/decide', { kind: 'rejected', reason: 'x' });
    await sleep((maxAge + 2) * 1000);
    facts.stale = await decide(jide, '/v/welcome-letter/6', 'rejected', 'REV-2 the closing line is not approved wording');
    await check(jide, 'log in again');
    await submit(jide, 'main a[href^="/login"]').catch(() => {});
    await idp(jide, 'jide');
    facts.rejectConfirm = await decide(jide, '/v/welcome-letter/6', 'rejected', 'REV-2 the closing line is not approved wording');
    facts.rejected = await sign(jide);

    // Two reviewers sign at the same moment (compliance and legal).
    const lena = await user(browser);
    await login(lena, 'lena', '/v/annual-statement/5');
    for (const page of [priya, lena]) {
      await openAll(page, '/v/annual-statement/5');
    }
    for (const [who, page] of [['priya', priya], ['lena', lena]]) {
      await fresh(page, who, '/v/annual-statement/5');
      await decide(page, '/v/annual-statement/5', 'approved');
      await page.click('input[name=confirm]');
    }
    const both = await Promise.all([priya, lena].map(async (page) => {
      await submit(page, 'main form button');
      return { title: await title(page), text: await text(page) };
    }));
    facts.concurrent = both;
    // Lena revokes the approval again, with her reason.
    await fresh(lena, 'lena', '/v/annual-statement/5');
    await decide(lena, '/v/annual-statement/5', 'revoked', 'REV-3 the statement title is not the regulator\'s');
    facts.revoked = await sign(lena);

    // Releasing runs: too early is refused; the report and every sample
    // document opened, a fresh login, the words, the signature. The
    // second run is stopped with a reason.
    await go(priya, '/');
    facts.runQueue = await text(priya);
    await go(priya, '/r/reminders-a');
    await check(priya, 'run');
    facts.earlyRelease = await decide(priya, '/r/reminders-a', 'released');
    await go(priya, '/r/reminders-a');
    const docs = (await priya.$$eval('main a', (as) => as.map((a) => a.getAttribute('href'))))
      .filter((h) => /\/(report|doc\/\d+)$/.test(h));
    for (const href of docs) {
      await go(priya, href).catch(() => {});
    }
    facts.runOpened = docs.length;
    await fresh(priya, 'priya', '/r/reminders-a');
    await decide(priya, '/r/reminders-a', 'released');
    await check(priya, 'release confirm');
    facts.released = await sign(priya);
    await fresh(priya, 'priya', '/r/reminders-b');
    await decide(priya, '/r/reminders-b', 'stopped', 'REV-9 wrong fee table');
    facts.stopped = await sign(priya);

    // Logging out ends the session: its cookie no longer opens a page.
    const before = (await priya.cookies(base)).filter((c) => c.name === '__Host-lp_session');
    await submit(priya, 'header form button');
    facts.loggedOut = await title(priya);
    await check(priya, 'logged out');
    const again = await fetch(base + '/', { redirect: 'manual', headers: { cookie: before.map((c) => `${c.name}=${c.value}`).join('; ') } });
    facts.afterLogout = again.status;
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(facts));
}

main().catch((e) => {
  console.error(e);
  console.log(JSON.stringify(facts));
  process.exit(1);
});
