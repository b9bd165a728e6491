// The Secrets dialog: a secret is stored encrypted beside the history, listed by name only, used by
// a run through `{{ secrets.NAME }}`, and deleted. The key comes from FLOW_SECRETS_KEY here (no
// desktop keyring session under Xvfb); the CLI tests cover the kernel keyring.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { invoke, launch, screenshot, setField, tid, waitFor } from './harness.mjs';

const VALUE = 'e2e-secret-value-9d1c';

describe('secrets', { timeout: 180_000 }, () => {
  let app;
  let browser;
  before(async () => {
    app = await launch({ env: { FLOW_SECRETS_KEY: 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=' } });
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'secrets');
    await app?.close();
  });

  it('stores a secret from the dialog, lists its name only, and a run reads it', async () => {
    await browser.$(tid('secrets-button')).click();
    await browser.$(tid('secrets-dialog')).waitForDisplayed({ timeout: 10_000 });
    await setField(browser, 'secret-name', 'e2e_token');
    await setField(browser, 'secret-value', VALUE);
    await browser.$(tid('secret-save')).click();
    await browser.$(tid('secret-item-e2e_token')).waitForDisplayed({ timeout: 10_000, timeoutMsg: 'the secret is not listed' });
    const dialog = await browser.$(tid('secrets-dialog')).getText();
    assert.ok(!dialog.includes(VALUE), 'the dialog never shows a value');
    assert.equal(await browser.$(tid('secret-value')).getValue(), '', 'the value field is cleared');
    await screenshot(browser, 'secrets-dialog');
    const file = readFileSync(join(app.dir, 'secrets.json'), 'utf8');
    assert.match(file, /"e2e_token"/);
    assert.ok(!file.includes(VALUE), 'the store holds the value encrypted');

    const flow = {
      version: 1,
      name: 'uses a secret',
      nodes: [{ id: 'd', type: 'static_data', params: { records: [{ v: '{{ secrets.e2e_token }}' }] } }],
      edges: [],
    };
    const id = await invoke(browser, 'start_execution', { flow, vars: {} });
    const detail = await waitFor(
      browser,
      async () => {
        const d = await invoke(browser, 'get_execution', { id });
        return d && d.state === 'succeeded' ? d : null;
      },
      20_000,
      'the run using the secret did not succeed',
    );
    assert.ok(detail);
  });

  it('deletes a secret', async () => {
    await browser.$(tid('secret-delete-e2e_token')).click();
    await waitFor(browser, async () => !(await browser.$(tid('secret-item-e2e_token')).isExisting()), 10_000, 'the secret is still listed');
    assert.ok(!readFileSync(join(app.dir, 'secrets.json'), 'utf8').includes('"e2e_token"'));
  });
});
