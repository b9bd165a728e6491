// Cancel stops a long run at once: generate_rows (huge count) -> delay -> collect.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  connectPorts,
  dropFromPalette,
  edgeCount,
  invoke,
  launch,
  nodeState,
  screenshot,
  selectNode,
  setField,
  tid,
  waitFor,
} from './harness.mjs';

describe('cancel', { timeout: 180_000 }, () => {
  let app;
  let browser;
  before(async () => {
    app = await launch();
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'cancel');
    await app?.close();
  });

  it('cancels a long run; every node ends cancelled within seconds', async () => {
    const gen = await dropFromPalette(browser, 'generate_rows', 140, 160);
    const delay = await dropFromPalette(browser, 'delay', 460, 160);
    const collect = await dropFromPalette(browser, 'collect', 780, 160);
    await connectPorts(browser, gen, 'out', delay, 'in');
    await connectPorts(browser, delay, 'out', collect, 'in');
    await waitFor(browser, async () => (await edgeCount(browser)) === 2, 5_000, 'edges not added');
    await selectNode(browser, gen);
    await setField(browser, 'param-count', 1_000_000_000);
    await selectNode(browser, delay);
    await setField(browser, 'param-ms', 200);

    await browser.$(tid('run-button')).click();
    await waitFor(browser, async () => (await nodeState(browser, delay)) === 'running', 20_000, 'delay never running');
    await browser.pause(500);
    const cancelButton = await browser.$(tid('cancel-button'));
    assert.ok(await cancelButton.isEnabled());
    const clicked = Date.now();
    await cancelButton.click();
    for (const id of [gen, delay, collect]) {
      await waitFor(browser, async () => (await nodeState(browser, id)) === 'cancelled', 5_000, `${id} not cancelled`);
    }
    const seconds = (Date.now() - clicked) / 1000;
    assert.ok(seconds < 5, `cancelled in ${seconds} s`);
    await waitFor(
      browser,
      async () => (await browser.$(tid('execution-state')).getText()).trim().toLowerCase() === 'cancelled',
      5_000,
      'execution not cancelled',
    );
    const [latest] = await invoke(browser, 'list_executions', { query: { limit: 1 } });
    assert.equal(latest.state, 'cancelled');
    const row = await browser.$(tid(`history-row-${latest.id}`));
    await row.waitForExist({ timeout: 10_000 });
    assert.equal(await row.getAttribute('data-state'), 'cancelled');
  });
});
