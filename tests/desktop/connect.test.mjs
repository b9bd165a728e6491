// Invalid connections are refused on the canvas, with the reason in `connect-error`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectPorts, dropFromPalette, edgeCount, launch, screenshot, tid, waitFor } from './harness.mjs';

describe('connections', { timeout: 180_000 }, () => {
  let app;
  let browser;
  let ids;
  before(async () => {
    app = await launch();
    browser = app.browser;
    const first = await dropFromPalette(browser, 'generate_rows', 140, 100);
    const second = await dropFromPalette(browser, 'generate_rows', 140, 340);
    const filter = await dropFromPalette(browser, 'filter', 520, 200);
    ids = { first, second, filter };
    await connectPorts(browser, first, 'out', filter, 'in');
    await waitFor(browser, async () => (await edgeCount(browser)) === 1, 5_000, 'the valid edge was not added');
  });
  after(async () => {
    if (browser) await screenshot(browser, 'connect');
    await app?.close();
  });

  async function refusal() {
    const banner = await browser.$(tid('connect-error'));
    await banner.waitForDisplayed({ timeout: 5_000, timeoutMsg: 'no connect-error shown' });
    return banner.getText();
  }

  it('refuses a second edge into a single-edge input, saying why', async () => {
    await connectPorts(browser, ids.second, 'out', ids.filter, 'in');
    const message = await refusal();
    assert.match(message, /takes one edge and is already connected/);
    assert.match(message, new RegExp(ids.filter));
    assert.equal(await edgeCount(browser), 1);
  });

  it('refuses connecting a node to itself', async () => {
    // Let the previous message go, so this one is new.
    await browser.execute(() => window.__flowStore?.getState().clearConnectError());
    await connectPorts(browser, ids.filter, 'out', ids.filter, 'in');
    assert.match(await refusal(), /cannot be connected to itself/);
    assert.equal(await edgeCount(browser), 1);
  });
});
