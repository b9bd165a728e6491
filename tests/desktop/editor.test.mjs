// Builds generate_rows -> filter -> collect from the palette, sets parameters, saves, runs, and
// checks the live node states and counters and the history row.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  connectPorts,
  dropFromPalette,
  edgeCount,
  invoke,
  launch,
  nodeCounters,
  nodeState,
  screenshot,
  selectNode,
  setField,
  tid,
  waitFor,
} from './harness.mjs';

const ROWS = 40_000_000;
const KEPT = 1000;

describe('editor', { timeout: 300_000 }, () => {
  let app;
  let browser;
  let ids;
  before(async () => {
    app = await launch();
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'editor');
    await app?.close();
  });

  it('drops three nodes from the palette and connects them', async () => {
    const gen = await dropFromPalette(browser, 'generate_rows', 140, 160);
    const filter = await dropFromPalette(browser, 'filter', 460, 160);
    const collect = await dropFromPalette(browser, 'collect', 780, 160);
    ids = { gen, filter, collect };
    assert.equal(new Set(Object.values(ids)).size, 3);
    await connectPorts(browser, gen, 'out', filter, 'in');
    await waitFor(browser, async () => (await edgeCount(browser)) === 1, 5_000, 'first edge not added');
    await connectPorts(browser, filter, 'out', collect, 'in');
    await waitFor(browser, async () => (await edgeCount(browser)) === 2, 5_000, 'second edge not added');
    assert.ok(await browser.$(tid('dirty-marker')).isExisting(), 'an edited flow is marked unsaved');
  });

  it('sets parameters in the parameter panel', async () => {
    await selectNode(browser, ids.gen);
    await setField(browser, 'param-count', ROWS);
    await setField(browser, 'param-fields', '{"id": {"sequence": {"start": 1}}}');
    await selectNode(browser, ids.filter);
    await browser.$(tid('param-conditions-add')).click();
    await setField(browser, 'param-conditions.0.field', 'id');
    await setField(browser, 'param-conditions.0.op', 'lte');
    await setField(browser, 'param-conditions.0.value', KEPT);
    await setField(browser, 'node-name-input', 'First rows');
    // The flow validates: no problem is listed.
    await waitFor(
      browser,
      async () => (await browser.$$(`${tid('problems-list')} li`).length) === 0,
      10_000,
      'the flow still has problems',
    );
  });

  it('saves the flow to the file the save dialog answers', async () => {
    await browser.$(tid('save-button')).click();
    await waitFor(browser, async () => !(await browser.$(tid('dirty-marker')).isExisting()), 10_000, 'still unsaved');
    const saved = JSON.parse(readFileSync(app.savePath, 'utf8'));
    assert.equal(saved.version, 1);
    const byId = Object.fromEntries(saved.nodes.map((n) => [n.id, n]));
    assert.equal(byId[ids.gen].params.count, ROWS);
    assert.deepEqual(byId[ids.filter].params.conditions, [{ field: 'id', op: 'lte', value: KEPT }]);
    assert.equal(byId[ids.filter].name, 'First rows');
    assert.equal(saved.edges.length, 2);
    // Loading it back gives the same flow.
    assert.deepEqual(await invoke(browser, 'load_flow_file', { path: app.savePath }), saved);
  });

  it('runs, with node states and counters changing live, and lists the run in the history', async () => {
    await browser.$(tid('run-button')).click();
    // While it runs: the source is running and its counter grows.
    await waitFor(browser, async () => (await nodeState(browser, ids.gen)) === 'running', 15_000, 'source never running');
    const samples = [];
    while ((await nodeState(browser, ids.gen)) === 'running' && samples.length < 400) {
      const c = await nodeCounters(browser, ids.gen);
      if (c.out !== null) samples.push(c.out);
      await browser.pause(25);
    }
    const distinct = new Set(samples.filter((n) => n > 0 && n < ROWS));
    assert.ok(distinct.size >= 2, `the source counter grew while running (saw ${[...distinct].join(', ')})`);
    for (const id of Object.values(ids)) {
      await waitFor(browser, async () => (await nodeState(browser, id)) === 'succeeded', 120_000, `${id} did not succeed`);
    }
    assert.equal(await browser.$(tid('execution-state')).getText().then((t) => t.trim().toLowerCase()), 'succeeded');
    const gen = await nodeCounters(browser, ids.gen);
    const filter = await nodeCounters(browser, ids.filter);
    const collect = await nodeCounters(browser, ids.collect);
    assert.deepEqual([gen.out, filter.in, filter.out, collect.in], [ROWS, ROWS, KEPT, KEPT]);

    const [latest] = await invoke(browser, 'list_executions', { query: { limit: 1 } });
    assert.equal(latest.state, 'succeeded');
    const row = await browser.$(tid(`history-row-${latest.id}`));
    await row.waitForExist({ timeout: 10_000 });
    assert.equal(await row.getAttribute('data-state'), 'succeeded');
    assert.equal(latest.records_out, gen.out + filter.out + (collect.out ?? 0));
    // The row shows what the source read, with thousands separators (40,000,000).
    assert.equal(latest.records_read, gen.out);
    assert.match((await row.getText()).replace(/,/g, ''), new RegExp(`\\b${gen.out}\\b`));
    const detail = await invoke(browser, 'get_execution', { id: latest.id });
    const counters = Object.fromEntries(detail.nodes.map((n) => [n.node_id, n.counters]));
    assert.equal(counters[ids.gen].records_out, ROWS);
    assert.equal(counters[ids.filter].records_out, KEPT);
    assert.equal(counters[ids.collect].records_in, KEPT);
  });
});
