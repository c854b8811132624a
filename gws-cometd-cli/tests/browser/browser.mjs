// Opens the simulator's console in headless Chromium (Debian's package) with Playwright.
// Every request to another origin than the simulator's is refused and reported: the page
// must work with loopback only.
import { chromium } from 'playwright-core';

export const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

export async function openConsole({ base, user, password, width = 1280, height = 800 }) {
  const browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking'],
  });
  const context = await browser.newContext({
    httpCredentials: { username: user, password },
    viewport: { width, height },
  });
  const origin = new URL(base).origin;
  const outside = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations += 1;
  });
  await page.goto(`${base}/`);
  await page.locator('[data-testid=link][data-live=true]').waitFor({ timeout: 10000 });
  return {
    browser,
    page,
    outside,
    errors,
    navigations: () => navigations,
  };
}

// A call's card.
export function callCard(page, id) {
  return page.locator(`[data-testid=call][data-call-id="${id}"]`);
}

// What a call's card shows.
export async function shown(page, id) {
  const card = callCard(page, id);
  return {
    state: await card.locator('[data-testid=state]').textContent(),
    type: await card.locator('[data-testid=type]').textContent(),
    parties: await card.locator('[data-testid=parties]').textContent(),
    pairs: await card.locator('[data-testid=pair]').evaluateAll((rows) => rows.map((r) => [
      r.querySelector('[data-testid=pair-key]').textContent,
      r.querySelector('[data-testid=pair-value]').textContent,
    ])),
  };
}

// Runs `scenario(args)` (the password from CONSOLE_PASSWORD) and prints its result as
// the last line of stdout; exits 1 with the error on stderr.
export async function main(scenarios) {
  const [name, json] = process.argv.slice(2);
  const scenario = scenarios[name];
  if (!scenario) {
    console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
    process.exit(2);
  }
  let opened;
  try {
    const args = { ...JSON.parse(json), password: process.env.CONSOLE_PASSWORD };
    opened = await openConsole(args);
    const result = await scenario(opened, args);
    result.outside = opened.outside;
    result.errors = opened.errors;
    result.navigations = opened.navigations();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    process.exitCode = 1;
  } finally {
    if (opened) await opened.browser.close();
  }
}
