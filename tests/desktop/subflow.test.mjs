// Examples > Sub-flow: normalize users runs its child (flows/parts/normalize-users.json, found
// next to the example's file); the Sub-flow node shows the child's nodes with their states and
// counts, and the history lists the child under its parent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { invoke, launch, nodeCounters, nodeState, screenshot, tid, waitFor } from './harness.mjs';

describe('sub-flow', { timeout: 180_000 }, () => {
  let app;
  let browser;
  before(async () => {
    app = await launch();
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'subflow');
    await app?.close();
  });

  it('runs the sub-flow example and shows the child inside its node', async () => {
    await browser.$(tid('examples-button')).click();
    await browser.$(tid('example-subflow-normalize-users')).click();
    await browser.$(tid('node-normalize')).waitForExist({ timeout: 15_000 });
    // The pre-run check follows the sub-flow file and finds nothing wrong.
    const problems = await browser.$(tid('problems-list'));
    await waitFor(browser, async () => (await problems.$$('li')).length === 0, 15_000, 'the example shows problems');

    await browser.$(tid('run-button')).click();
    for (const id of ['users', 'normalize', 'out']) {
      await waitFor(browser, async () => (await nodeState(browser, id)) === 'succeeded', 60_000, `${id} did not succeed`);
    }
    // 1000 users with statuses cycling active/inactive/draft: the child keeps the 333 drafts.
    const counters = await nodeCounters(browser, 'normalize');
    assert.deepEqual([counters.in, counters.out], [1000, 333], counters.text);
    for (const child of ['in', 'keep', 'rename', 'out']) {
      const row = await browser.$(tid(`node-subflow-normalize/${child}`));
      await row.waitForExist({ timeout: 5_000 });
      assert.equal(await row.getAttribute('data-state'), 'succeeded', `child node ${child}`);
    }
    const keep = await browser.$(tid('node-subflow-normalize/keep')).getText();
    assert.match(keep, /out 333/);

    const [child, parent] = await invoke(browser, 'list_executions', { query: { limit: 2 } });
    assert.equal(parent.state, 'succeeded');
    assert.equal(child.parent_id, parent.id);
    assert.equal(child.flow, 'Normalize users');
  });
});
