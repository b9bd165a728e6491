// Alerts in the Monitoring panel, with the app judging the rules every second
// (ALERT_INTERVAL_SECONDS=1): a flow_failing rule (1 failure in 5 minutes) on generate_rows (10
// rows) -> fail (after 1 record) -> collect is refused with a window of 0 (the engine's message
// beside the form, the form as typed) and added with 5; a failed run fires it (a firing item and a
// notice), a run that passes (the fail node's after_records above the 10 rows) resolves it; then
// the rule is deleted and its alert stays as history. Screenshot `alerts-firing`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launch, screenshot, selectNode, setField, tid, waitFor } from './harness.mjs';
import { buildFlow, closePanel, openPanel, textOf } from './monitoring-helpers.mjs';

const FLOW = 'alerts-flow';
const RULE = 'alerts-flow failing';

/** The states (firing, resolved) of the listed alerts of `rule`, in the order shown. */
function alertStates(browser, rule) {
  return browser.execute(
    (rule) => [...document.querySelectorAll('[data-testid="alert-item"]')].filter((e) => e.dataset.rule === rule).map((e) => e.dataset.state),
    rule,
  );
}

/** The names in the rules table, in the order shown. */
function ruleNames(browser) {
  return browser.execute(() => [...document.querySelectorAll('[data-testid="alert-rule-row"]')].map((r) => r.dataset.name));
}

/** The one-line condition of the rule `name`. */
function ruleDescription(browser, name) {
  return browser.execute(
    (name) =>
      [...document.querySelectorAll('[data-testid="alert-rule-row"]')]
        .find((r) => r.dataset.name === name)
        ?.querySelector('[data-testid="alert-rule-description"]')
        ?.textContent.trim() ?? null,
    name,
  );
}

/** The texts of the alert notices on screen. */
function toasts(browser) {
  return browser.execute(() => [...document.querySelectorAll('[data-testid="alert-toast"]')].map((t) => t.textContent.trim()));
}

/** Clicks an element of the panel, centred first so the notices in the window's bottom corner cannot cover it. */
async function click(browser, selector) {
  const el = await browser.$(selector);
  await el.waitForExist({ timeout: 5_000 });
  await el.scrollIntoView({ block: 'center' });
  await el.click();
}

/** Runs the open flow from the toolbar and waits until it ends as `state`. */
async function run(browser, state) {
  const button = await browser.$(tid('run-button'));
  await waitFor(browser, () => button.isEnabled(), 10_000, 'Run stays disabled');
  await button.click();
  await waitFor(browser, async () => (await textOf(browser, 'execution-state'))?.toLowerCase() === state, 20_000, `the run did not end ${state}`);
}

describe('alerts', { timeout: 300_000 }, () => {
  let app;
  let browser;
  let failing;
  before(async () => {
    app = await launch({ env: { ALERT_INTERVAL_SECONDS: '1' } });
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'alerts');
    await app?.close();
  });

  it('refuses a window of 0 with the engine’s message beside the form, and keeps the form as typed', async () => {
    failing = await buildFlow(browser, FLOW, { failing: true });
    await openPanel(browser);
    await browser.$(tid('alerts-section')).waitForExist({ timeout: 5_000 });
    await waitFor(browser, async () => (await textOf(browser, 'alerts-firing')) === 'none firing', 15_000, 'the alerts never loaded');
    assert.deepEqual(await ruleNames(browser), []);

    await setField(browser, 'alert-rule-name', RULE);
    await setField(browser, 'alert-rule-kind', 'flow_failing');
    await setField(browser, 'alert-rule-flow', FLOW);
    await setField(browser, 'alert-rule-failures', 1);
    await setField(browser, 'alert-rule-window', 0);
    await click(browser, tid('alert-rule-add'));
    await browser.$(tid('alert-rule-error')).waitForExist({ timeout: 5_000 });
    assert.match(await textOf(browser, 'alert-rule-error'), /window_minutes: 0 is not from 1 to 43200/);
    assert.equal(await browser.$(tid('alert-rule-name')).getValue(), RULE);
    assert.equal(await browser.$(tid('alert-rule-flow')).getValue(), FLOW);
    assert.equal(await browser.$(tid('alert-rule-failures')).getValue(), '1');
    assert.equal(await browser.$(tid('alert-rule-window')).getValue(), '0');
    assert.deepEqual(await ruleNames(browser), []);
  });

  it('adds the rule with a window of 5 minutes', async () => {
    await setField(browser, 'alert-rule-window', 5);
    await click(browser, tid('alert-rule-add'));
    await waitFor(browser, async () => (await ruleNames(browser)).includes(RULE), 5_000, 'the rule is not listed');
    assert.equal(await browser.$(tid('alert-rule-error')).isExisting(), false);
    assert.match(await ruleDescription(browser, RULE), new RegExp(`“${FLOW}” failed at least once in the last 5 minutes`));
    // The form is ready for the next rule.
    assert.equal(await browser.$(tid('alert-rule-name')).getValue(), '');
  });

  it('fires when the flow fails: a firing item and a notice', async () => {
    await run(browser, 'failed');
    const toast = await waitFor(
      browser,
      async () => (await toasts(browser)).find((t) => t.startsWith(`Alert “${RULE}”`)),
      20_000,
      'no notice of the alert',
    );
    assert.match(toast, /failed/);
    await waitFor(browser, async () => (await alertStates(browser, RULE))[0] === 'firing', 15_000, 'the alert is not listed as firing');
    assert.equal(await textOf(browser, 'alerts-firing'), '1 firing');
    await browser.$(tid('alerts-section')).scrollIntoView({ block: 'start' });
    await screenshot(browser, 'alerts-firing');
  });

  it('resolves when the flow succeeds', async () => {
    // The canvas is under the panel: back to it to let the fail node pass all 10 rows.
    await closePanel(browser);
    await selectNode(browser, failing.fail);
    await setField(browser, 'param-after_records', 100);
    await run(browser, 'succeeded');
    await waitFor(
      browser,
      async () => (await toasts(browser)).some((t) => t.startsWith(`Resolved “${RULE}”`)),
      20_000,
      'no notice of the resolution',
    );
    await openPanel(browser);
    await waitFor(browser, async () => (await alertStates(browser, RULE))[0] === 'resolved', 15_000, 'the alert is not listed as resolved');
    assert.deepEqual(await alertStates(browser, RULE), ['resolved']);
    assert.match(await textOf(browser, 'alert-resolution'), /succeeded/);
    assert.equal(await textOf(browser, 'alerts-firing'), 'none firing');
  });

  it('deletes the rule; its alert stays as history', async () => {
    await click(browser, `${tid('alert-rule-row')}[data-name="${RULE}"] ${tid('alert-rule-delete')}`);
    await waitFor(browser, async () => !(await ruleNames(browser)).includes(RULE), 5_000, 'the rule is still listed');
    assert.equal(await browser.$(tid('alert-rule-error')).isExisting(), false);
    assert.deepEqual(await alertStates(browser, RULE), ['resolved']);
    await browser.$(tid('alerts-section')).scrollIntoView({ block: 'start' });
  });
});
