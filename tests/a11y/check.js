// Accessibility check of HTML pages, for letterpress's tests.
//
//   node check.js [--shots DIR] FILE.html...
//
// Opens each page from disk in Debian's headless Chromium (CHROMIUM, default
// /usr/bin/chromium) and runs axe-core with the WCAG 2.0 and 2.1 level A and
// AA rules. It also measures how far the page scrolls sideways in a window
// 320 CSS pixels wide (WCAG 1.4.10 reflow: a phone, or 1280 pixels at 400%
// zoom) and at 200% zoom of a 1280 x 800 desktop window; with --shots, it
// saves screenshots of the first screen of each page at desktop and phone
// size into DIR for a person to look at. Prints one JSON array: per file its violations (rule,
// impact, help, the elements) and the sideways overflow in pixels.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

async function overflow(page, width, height, scale) {
  await page.setViewport({ width, height, deviceScaleFactor: scale });
  return page.evaluate(() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth));
}

async function main() {
  let files = process.argv.slice(2);
  let shots = null;
  if (files[0] === '--shots') {
    shots = files[1];
    files = files.slice(2);
    fs.mkdirSync(shots, { recursive: true });
  }
  if (files.length === 0) {
    console.error('usage: node check.js [--shots DIR] FILE.html...');
    process.exit(2);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'letterpress-a11y-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const results = [];
  try {
    const page = await browser.newPage();
    // Pages must be self-contained: any request for another file or
    // address is refused and reported.
    const requests = [];
    await page.setRequestInterception(true);
    page.on('request', (r) => {
      const url = r.url();
      if (url.startsWith('data:') || files.some((f) => url === 'file://' + path.resolve(f))) {
        r.continue();
      } else {
        requests.push(url);
        r.abort();
      }
    });
    for (const file of files) {
      requests.length = 0;
      await page.setViewport({ width: 1280, height: 800, deviceScaleFactor: 1 });
      await page.goto('file://' + path.resolve(file), { waitUntil: 'load' });
      await page.addScriptTag({ content: axeSource });
      const axe = await page.evaluate(async (tags) => {
        const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
        return r.violations.map((v) => ({
          id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map((n) => n.target.join(' ')),
        }));
      }, WCAG_AA);
      const name = path.basename(file).replace(/\.html?$/, '');
      if (shots) await page.screenshot({ path: path.join(shots, name + '-desktop.png') });
      const zoom200 = await overflow(page, 640, 400, 2);
      const phone = await overflow(page, 320, 640, 2);
      if (shots) {
        await page.setViewport({ width: 375, height: 667, deviceScaleFactor: 1 });
        await page.screenshot({ path: path.join(shots, name + '-phone.png') });
      }
      results.push({ file, violations: axe, overflow: { zoom200, phone }, requests: [...requests] });
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(results, null, 1));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(2);
});
