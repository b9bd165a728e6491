// A new user's first launch on a fresh app data directory: the app creates the example
// connections itself (from POSTGRESQL_URL, else the local default), Examples > Case 1 opens with
// no problems, and Run succeeds with the counts the database holds, without any manual step.
// The sample data is there because scripts/test-desktop runs scripts/prepare-examples, exactly as
// the launch command scripts/desktop does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { invoke, launch, nodeCounters, nodeState, screenshot, tid, waitFor } from './harness.mjs';

const URL = process.env.POSTGRESQL_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One number from the test's PostgreSQL. */
function count(sql) {
  const out = spawnSync('psql', [URL, '-XtAc', sql], { encoding: 'utf8' });
  assert.equal(out.status, 0, `psql: ${out.stderr}`);
  return Number(out.stdout.trim());
}

describe('first run', { timeout: 180_000 }, () => {
  let app;
  let browser;
  before(async () => {
    app = await launch({ env: { POSTGRESQL_URL: URL } });
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'first-run-case1');
    await app?.close();
  });

  it('runs Examples > Case 1 with no manual step', async () => {
    const connections = await invoke(browser, 'list_connections');
    assert.deepEqual(
      connections.map((c) => [c.name, c.kind]),
      [
        ['mongodb', 'mongodb'],
        ['postgres', 'postgres'],
      ],
    );
    const notes = await invoke(browser, 'setup_notes');
    assert.ok(notes.some((n) => n.includes('`postgres`')), JSON.stringify(notes));

    await browser.$(tid('examples-button')).click();
    await browser.$(tid('example-case1-postgres-active-users')).click();
    await browser.$(tid('node-processed')).waitForExist({ timeout: 15_000 });
    // The pre-run check (schemas from the database, connections answering) finds nothing.
    const problems = await browser.$(tid('problems-list'));
    await waitFor(browser, async () => (await problems.$$('li')).length === 0, 15_000, 'Case 1 shows problems');

    const users = count('SELECT count(*) FROM users');
    const active = count("SELECT count(*) FROM users WHERE status = 'active'");
    assert.ok(active > 0, 'the sample data has active users');
    await browser.$(tid('run-button')).click();
    for (const id of ['users', 'active', 'rename', 'processed']) {
      await waitFor(browser, async () => (await nodeState(browser, id)) === 'succeeded', 90_000, `${id} did not succeed`);
    }
    assert.equal((await nodeCounters(browser, 'users')).out, users);
    assert.equal((await nodeCounters(browser, 'active')).out, active);
    assert.equal((await nodeCounters(browser, 'processed')).in, active);
    const [latest] = await invoke(browser, 'list_executions', { query: { limit: 1 } });
    assert.equal(latest.state, 'succeeded');
    assert.ok(count("SELECT count(*) FROM processed_users WHERE id IN (SELECT id FROM users WHERE status = 'active')") >= active);
  });
});
