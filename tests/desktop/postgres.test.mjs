// A flow against the real PostgreSQL (127.0.0.1:5432, user postgres, database test, trust auth):
// the connection is made and tested in the Connections dialog, then postgres_query -> collect runs.
// Needs the `postgres_query` node type in the catalog (the connector crate); without it the test
// is reported as skipped, saying why.
import assert from 'node:assert/strict';
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

const URL = process.env.E2E_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROWS = 250;

describe('postgres', { timeout: 180_000 }, () => {
  let app;
  let browser;
  let catalog = [];
  before(async () => {
    app = await launch();
    browser = app.browser;
    catalog = await invoke(browser, 'catalog');
  });
  after(async () => {
    if (browser) await screenshot(browser, 'postgres');
    await app?.close();
  });

  it('runs postgres_query -> collect on a connection made in the Connections dialog', async (t) => {
    if (!catalog.some((d) => d.type === 'postgres_query')) {
      t.skip('the node type postgres_query is not in the catalog yet');
      return;
    }
    await browser.$(tid('connections-button')).click();
    await browser.$(tid('connection-new')).click();
    await setField(browser, 'connection-name', 'e2e_pg');
    await setField(browser, 'connection-kind', 'postgres');
    await setField(browser, 'connection-url', URL);
    // Test it first (Engine::test_connection through the test_connection command).
    await browser.$(tid('connection-test')).click();
    const result = await browser.$(tid('connection-test-result'));
    await result.waitForDisplayed({ timeout: 20_000, timeoutMsg: 'no connection test result' });
    assert.match(await result.getAttribute('class'), /\bok\b/, await result.getText());
    await browser.$(tid('connection-save')).click();
    await waitFor(
      browser,
      async () => (await invoke(browser, 'list_connections')).some((c) => c.name === 'e2e_pg'),
      10_000,
      'the connection was not saved',
    );
    const close = await browser.$(tid('modal-close'));
    if (await close.isExisting()) await close.click();

    const query = await dropFromPalette(browser, 'postgres_query', 160, 160);
    const collect = await dropFromPalette(browser, 'collect', 560, 160);
    await connectPorts(browser, query, 'out', collect, 'in');
    await waitFor(browser, async () => (await edgeCount(browser)) === 1, 5_000, 'edge not added');
    await selectNode(browser, query);
    await setField(browser, 'param-connection', 'e2e_pg');
    await setField(browser, 'param-query', `SELECT g AS n, 'row ' || g AS label FROM generate_series(1, ${ROWS}) AS g`);

    await browser.$(tid('run-button')).click();
    for (const id of [query, collect]) {
      await waitFor(browser, async () => (await nodeState(browser, id)) === 'succeeded', 60_000, `${id} did not succeed`);
    }
    assert.equal((await nodeCounters(browser, query)).out, ROWS);
    assert.equal((await nodeCounters(browser, collect)).in, ROWS);
    const [latest] = await invoke(browser, 'list_executions', { query: { limit: 1 } });
    assert.equal(latest.state, 'succeeded');
    await browser.$(tid(`history-row-${latest.id}`)).waitForExist({ timeout: 10_000 });
  });
});
