// The console's browser scenarios, run by gws-cometd-cli/tests/it/console.rs:
//   CONSOLE_PASSWORD=... node console.mjs SCENARIO '{"base":...,"user":...,...}'
// Each prints one JSON line, what the page showed, for the Rust test to check.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { callCard, main, shown } from './browser.mjs';

const exec = promisify(execFile);

// Runs `gws-cometd COMMAND --gws BASE --user USER ARGS...` with the password in the
// environment, as a person would from another terminal.
async function cli(args, command, ...rest) {
  await exec(args.cli, [command, '--gws', args.base, '--user', args.user, ...rest], {
    env: { ...process.env, GWS_PASSWORD: args.password },
    timeout: 20000,
  });
}

// Milliseconds from now until `locator` is there.
async function msUntil(locator) {
  const start = performance.now();
  await locator.waitFor({ timeout: 10000 });
  return Math.round(performance.now() - start);
}

// Waits until the replay's position matches `attributes` ('[data-paused=true]').
async function replayAt(page, attributes) {
  await page.locator(`[data-testid=replay-position]${attributes}`).waitFor({ timeout: 10000 });
}

// What the replay panel shows.
async function replayPosition(page) {
  const position = page.getByTestId('replay-position');
  const data = await position.evaluate((e) => ({ ...e.dataset }));
  return {
    text: await position.textContent(),
    delivered: Number(data.delivered),
    total: Number(data.total),
    sessions: Number(data.sessions),
    paused: data.paused === 'true',
    speed: data.speed,
    selected: await page.getByTestId('replay-speed').inputValue(),
  };
}

const scenarios = {
  // The page lists the call the test rang, with its data.
  async shows({ page }, args) {
    await callCard(page, args.callId).waitFor({ timeout: 10000 });
    return {
      shown: await shown(page, args.callId),
      count: await page.getByTestId('count').textContent(),
      replayHidden: await page.getByTestId('replay-controls').isHidden(),
    };
  },

  // serve --replay: once a session got `args.from` notifications, pause, then `args.steps`
  // steps, each waited for until the position shows one more delivered; after each, the
  // Calls list (`[id, state]`) and the Changes list (newest first) as the page shows them.
  async replayStep({ page }, args) {
    await replayAt(page, `[data-sessions="1"][data-delivered="${args.from}"]`);
    const start = await replayPosition(page);
    await page.getByTestId('replay-pause').click();
    await replayAt(page, '[data-paused=true]');
    const steps = [];
    for (let i = 0; i < args.steps; i += 1) {
      const { delivered } = await replayPosition(page);
      await page.getByTestId('replay-step').click();
      await replayAt(page, `[data-delivered="${delivered + 1}"]`);
      const calls = await page.getByTestId('call').evaluateAll((cards) => cards.map((c) => [
        c.dataset.callId,
        c.dataset.state,
      ]));
      const changes = await page.getByTestId('change').allTextContents();
      steps.push({ ...(await replayPosition(page)), calls, changes });
    }
    return { start, steps };
  },

  // serve --replay, paused: a speed the simulator refuses (its error shows), speed max,
  // then play to the end.
  async replayPlay({ page }) {
    await replayAt(page, '[data-paused=true]');
    const speed = page.getByTestId('replay-speed');
    await speed.evaluate((select) => select.append(new Option('fast', 'fast')));
    await speed.selectOption('fast');
    const error = page.getByTestId('error-text');
    await error.and(page.locator(':text("not a speed")')).waitFor({ timeout: 10000 });
    const speedError = await error.textContent();
    await speed.selectOption('max');
    await replayAt(page, '[data-speed=max]');
    await page.getByTestId('replay-play').click();
    await replayAt(page, '[data-paused=false]');
    const { total } = await replayPosition(page);
    await replayAt(page, `[data-delivered="${total}"]`);
    return { speedError, end: await replayPosition(page) };
  },

  // Changes made from the CLI show without a reload.
  async live({ page }, args) {
    const card = callCard(page, args.callId);
    await card.and(page.locator('[data-state=Ringing]')).waitFor({ timeout: 10000 });
    await cli(args, 'answer', args.callId);
    const answerMs = await msUntil(card.and(page.locator('[data-state=Established]')));
    await cli(args, 'attach', args.callId, 'Note=from the CLI');
    const attachMs = await msUntil(card.locator('[data-testid=pair-key]', { hasText: 'Note' }));
    const changes = await page.getByTestId('change').allTextContents();
    return { answerMs, attachMs, shown: await shown(page, args.callId), changes };
  },

  // Clicking ring rings an inbound call with the data typed.
  async ring({ page }) {
    const ids = () => page.getByTestId('call').evaluateAll((cards) => cards.map((c) => c.dataset.callId));
    const before = await ids();
    await page.getByTestId('ring-from').fill('+3225550199');
    await page.getByTestId('ring-data').fill('Segment=Gold\nSegment=Silver\nScore:=7');
    await page.getByTestId('ring').click();
    await page.waitForFunction(
      (known) => [...document.querySelectorAll('[data-testid=call]')]
        .some((c) => !known.includes(c.dataset.callId) && c.querySelectorAll('[data-testid=pair]').length === 3),
      before,
      { timeout: 10000 },
    );
    const id = (await ids()).find((i) => !before.includes(i));
    return { id, shown: await shown(page, id) };
  },

  // Answer, then attach a pair from the page.
  async attach({ page }, args) {
    const card = callCard(page, args.callId);
    await card.getByTestId('answer').click();
    await card.and(page.locator('[data-state=Established]')).waitFor({ timeout: 10000 });
    await card.getByTestId('attach-key').fill('Disposition');
    await card.getByTestId('attach-value').fill('Resolved');
    await card.getByTestId('attach').click();
    await card.locator('[data-testid=pair-key]', { hasText: 'Disposition' }).waitFor({ timeout: 10000 });
    await card.getByTestId('hold').click();
    await card.and(page.locator('[data-state=Held]')).waitFor({ timeout: 10000 });
    const changes = await page.getByTestId('change').allTextContents();
    return { shown: await shown(page, args.callId), changes };
  },

  // A whole call from the desk phone: dial, far end answers, the user-data operations,
  // hold, retrieve, hang up, end of wrap-up.
  async phone({ page }) {
    const ids = () => page.getByTestId('call').evaluateAll((cards) => cards.map((c) => c.dataset.callId));
    const before = await ids();
    await page.getByTestId('dial-to').fill('+442075550123');
    await page.getByTestId('dial').click();
    await page.waitForFunction(
      (known) => [...document.querySelectorAll('[data-testid=call]')].some((c) => !known.includes(c.dataset.callId)),
      before,
    );
    const id = (await ids()).find((i) => !before.includes(i));
    const card = callCard(page, id);
    const steps = [];
    // Waits until the card shows `state` and `pairs` ("K=1,K=2"); records what it showed.
    const step = async (name, state, pairs) => {
      await page.waitForFunction(
        ([cardId, want, wantPairs]) => {
          const c = document.querySelector(`[data-call-id="${cardId}"]`);
          const got = [...c.querySelectorAll('[data-testid=pair]')].map((r) => [
            r.querySelector('[data-testid=pair-key]').textContent,
            r.querySelector('[data-testid=pair-value]').textContent,
          ].join('=')).join(',');
          return c.dataset.state === want && got === wantPairs;
        },
        [id, state, pairs],
      ).catch(async (e) => {
        throw new Error(`${name}: wanted ${state} [${pairs}], saw ${JSON.stringify(await shown(page, id))}: ${e.message}`);
      });
      const seen = await shown(page, id);
      steps.push([name, seen.state, seen.pairs.map((p) => p.join('=')).join(',')]);
    };
    const pair = async (key, value, button) => {
      await card.getByTestId('attach-key').fill(key);
      await card.getByTestId('attach-value').fill(value);
      await card.getByTestId(button).click();
    };
    await step('dial', 'Dialing', '');
    await card.getByTestId('remote-answer').click();
    await step('far end answers', 'Established', '');
    await pair('K', '1', 'attach');
    await step('attach', 'Established', 'K=1');
    await pair('K', '2', 'attach');
    await step('attach again', 'Established', 'K=1,K=2');
    await pair('K', '3', 'update');
    await step('update', 'Established', 'K=3,K=3');
    await card.getByTestId('delete-pair').first().click();
    await step('delete pair', 'Established', '');
    await pair('A', '1', 'attach');
    await step('attach', 'Established', 'A=1');
    await card.getByTestId('delete-all').click();
    await step('delete all', 'Established', '');
    await card.getByTestId('hold').click();
    await step('hold', 'Held', '');
    await card.getByTestId('retrieve').click();
    await step('retrieve', 'Established', '');
    await card.getByTestId('hangup').click();
    await step('hang up', 'Released', '');
    await card.getByTestId('complete').click();
    await card.waitFor({ state: 'detached' });
    return { id, steps };
  },

  // Refusals show on the page: the console's own, and GWS's.
  async refused({ page }, args) {
    await page.getByTestId('ring-data').fill('Score:=not json');
    await page.getByTestId('ring').click();
    const error = page.getByTestId('error-text');
    await error.and(page.locator(':text("not JSON")')).waitFor({ timeout: 10000 });
    const ringError = await error.textContent();
    // The page goes on believing the call rings (its updates held) while the CLI answers.
    const card = callCard(page, args.callId);
    await card.waitFor({ timeout: 10000 });
    await page.route('**/console/api/state**', () => {});
    // The request already waiting answers this change; the next one is held.
    await cli(args, 'attach', args.callId, 'Flush=1');
    await card.locator('[data-testid=pair-key]', { hasText: 'Flush' }).waitFor();
    await cli(args, 'answer', args.callId);
    await card.getByTestId('answer').click();
    await error.and(page.locator(':text("statusCode 2")')).waitFor({ timeout: 10000 });
    return { ringError, answerError: await error.textContent() };
  },

  // The page as a person sees it; with a phone-sized window nothing is cut off.
  async look({ page }, args) {
    await page.getByTestId('call').nth(args.calls - 1).waitFor({ timeout: 10000 });
    await page.getByTestId('change').nth(args.calls - 1).waitFor({ timeout: 10000 });
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const first = page.getByTestId('call').first();
    const answer = first.getByTestId('hangup');
    await answer.scrollIntoViewIfNeeded();
    const box = await answer.boundingBox();
    const ring = await page.getByTestId('ring').boundingBox();
    return { overflow, hangupBox: box, ringBox: ring, width: page.viewportSize().width };
  },
};

await main(scenarios);
