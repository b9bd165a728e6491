// The monitoring panel over the canvas: it follows two small flows' runs live (generate_rows ->
// collect twice, generate_rows -> fail -> collect once): the dashboard's totals, the flows and
// nodes tables (sorting, a click on a node row), the window selector; and measures
// monitoring_panel_render_ms, the charts' render of 24 h at one point a minute (1,440 points).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launch, screenshot, setField, tid, waitFor } from './harness.mjs';
import { buildFlow, closePanel, openPanel, textOf } from './monitoring-helpers.mjs';

const OK_FLOW = 'monitoring-ok';
const FAIL_FLOW = 'monitoring-fail';
const RENDER_MEASURE = 'monitoring-charts';

/** Waits until the dashboard's total `which` (executions, succeeded, failed, cancelled) reads `n`. */
function waitForTotal(browser, which, n, timeout = 20_000) {
  return waitFor(browser, async () => (await textOf(browser, `monitoring-total-${which}`)) === String(n), timeout, `the panel never showed ${n} ${which}`);
}

/** The data-testids of the rows of a monitoring table, in the order shown. */
function rowIds(browser, table) {
  return browser.execute(
    (selector) => [...document.querySelectorAll(`${selector} tbody tr[data-testid]`)].map((r) => r.getAttribute('data-testid')),
    tid(table),
  );
}

/** Points per series drawn by the charts' last render (0 while there is none). */
function chartPoints(browser) {
  return browser.execute(() => Number(document.querySelector('[data-testid="monitoring-charts"]')?.dataset.points ?? 0));
}

/** Runs the open flow from the toolbar (the panel's totals then tell when it ended). */
async function run(browser) {
  const button = await browser.$(tid('run-button'));
  await waitFor(browser, () => button.isEnabled(), 10_000, 'Run stays disabled');
  await button.click();
}

describe('monitoring', { timeout: 300_000 }, () => {
  let app;
  let browser;
  let failing;
  before(async () => {
    app = await launch();
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'monitoring');
    await app?.close();
  });

  it('opens over the canvas with the system, the health and an empty dashboard, and closes back to the flow', async () => {
    await openPanel(browser);
    await waitForTotal(browser, 'executions', 0);
    await waitFor(browser, async () => /%$/.test((await textOf(browser, 'monitoring-cpu')) ?? ''), 10_000, 'no CPU figure');
    await waitFor(browser, () => browser.$(tid('monitoring-health-store')).isExisting(), 15_000, 'no health of the store');
    assert.equal(await browser.$(tid('monitoring-health-store')).getAttribute('data-ok'), 'true');
    assert.equal(await textOf(browser, 'monitoring-success-rate'), '—');
    await closePanel(browser);
    assert.ok(await browser.$(tid('canvas')).isDisplayed());
  });

  it('follows two runs of a flow as they end', async () => {
    await buildFlow(browser, OK_FLOW, { failing: false });
    // The panel stays open while the flow runs from the toolbar.
    await openPanel(browser);
    await run(browser);
    await waitForTotal(browser, 'executions', 1);
    await run(browser);
    await waitForTotal(browser, 'executions', 2);
    await waitForTotal(browser, 'succeeded', 2);
    assert.equal(await textOf(browser, 'monitoring-success-rate'), '100%');
  });

  it('counts a failed run of another flow', async () => {
    await closePanel(browser);
    await browser.$(tid('new-button')).click();
    // The built flow is unsaved: New asks whether to discard it.
    const accepted = async () => {
      try {
        await browser.acceptAlert();
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(browser, accepted, 5_000, 'New did not ask to discard the unsaved flow');
    await waitFor(browser, async () => (await browser.$$('[data-testid^="node-"][data-state]').length) === 0, 5_000, 'the flow was not cleared');
    failing = await buildFlow(browser, FAIL_FLOW, { failing: true });
    await openPanel(browser);
    await run(browser);
    await waitForTotal(browser, 'executions', 3);
    await waitForTotal(browser, 'succeeded', 2);
    await waitForTotal(browser, 'failed', 1);
    assert.equal(await textOf(browser, 'monitoring-total-cancelled'), '0');
    assert.equal(await textOf(browser, 'monitoring-success-rate'), '66.7%');
    assert.equal((await browser.$(tid('execution-state')).getText()).trim().toLowerCase(), 'failed');
  });

  it('lists both flows and their nodes, sorted by error rate on a click', async () => {
    await waitFor(browser, async () => (await rowIds(browser, 'monitoring-flows')).length === 2, 10_000, 'the flows table has no two rows');
    assert.deepEqual((await rowIds(browser, 'monitoring-flows')).sort(), [`monitoring-flow-${FAIL_FLOW}`, `monitoring-flow-${OK_FLOW}`]);
    assert.match(await textOf(browser, `monitoring-flow-${FAIL_FLOW}`), /100%/);

    const failRow = `monitoring-node-${FAIL_FLOW}-${failing.fail}`;
    await waitFor(browser, async () => (await rowIds(browser, 'monitoring-nodes')).includes(failRow), 10_000, 'the fail node has no row');
    await browser.$(tid('monitoring-nodes-sort-error_rate')).click();
    const worstFirst = await rowIds(browser, 'monitoring-nodes');
    const okRows = worstFirst.filter((id) => id.startsWith(`monitoring-node-${OK_FLOW}-`));
    assert.ok(okRows.length >= 2, worstFirst.join(', '));
    for (const id of okRows) assert.ok(worstFirst.indexOf(failRow) < worstFirst.indexOf(id), worstFirst.join(', '));
  });

  it('shows a node of the open flow on the canvas, and says why not for another flow', async () => {
    const [okRow] = (await rowIds(browser, 'monitoring-nodes')).filter((id) => id.startsWith(`monitoring-node-${OK_FLOW}-`));
    // WebKit's WebDriver does not click table rows themselves: a cell of theirs.
    await browser.$(tid(okRow)).$('td').click();
    await browser.$(tid('monitoring-hint')).waitForExist({ timeout: 5_000 });
    assert.match(await textOf(browser, 'monitoring-hint'), new RegExp(`${OK_FLOW}.*not the open flow`));

    await browser.$(tid(`monitoring-node-${FAIL_FLOW}-${failing.fail}`)).$('td').click();
    await waitFor(browser, async () => !(await browser.$(tid('monitoring-panel')).isExisting()), 5_000, 'the panel did not close');
    const selected = await browser.execute(() => window.__flowStore.getState().nodes.filter((n) => n.selected).map((n) => n.id));
    assert.deepEqual(selected, [failing.fail]);
  });

  it('renders 24 h at one point a minute (monitoring_panel_render_ms)', async () => {
    await openPanel(browser);
    await waitFor(browser, async () => (await chartPoints(browser)) > 0, 10_000, 'the charts never drew');
    const renders = [];
    for (let i = 0; i < 3; i++) {
      await browser.execute((name) => performance.clearMeasures(name), RENDER_MEASURE);
      await setField(browser, 'monitoring-window', 'Last 24 hours');
      await waitFor(browser, async () => (await chartPoints(browser)) >= 1440, 15_000, 'the 24 h charts never drew');
      // The window's totals are those of the last hour: all three runs.
      await waitForTotal(browser, 'executions', 3);
      const ms = await browser.execute((name) => performance.getEntriesByName(name).at(-1)?.duration ?? null, RENDER_MEASURE);
      assert.ok(Number.isFinite(ms), 'no render measure');
      renders.push(ms);
      await setField(browser, 'monitoring-window', 'Last hour');
      await waitFor(browser, async () => (await chartPoints(browser)) > 0 && (await chartPoints(browser)) < 100, 15_000, 'the 1 h charts never drew');
    }
    const median = [...renders].sort((a, b) => a - b)[1];
    console.log(`monitoring_panel_render_ms ${Math.round(median)} (renders: ${renders.map(Math.round).join(', ')} ms)`);
    await waitForTotal(browser, 'executions', 3);
  });
});
