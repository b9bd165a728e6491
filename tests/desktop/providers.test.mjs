// The Secrets dialog's Providers section: a Vault provider set up from the dialog is listed (target,
// auth, stored) without its token, kept sealed in secrets.json beside the history, and removed;
// a provider the environment sets up is listed as such and the store's settings are refused.
// Saving does not reach Vault (it is read at run time only), so no server is needed. The store's
// key comes from FLOW_SECRETS_KEY (no desktop keyring session under Xvfb), and the VAULT_* and
// AWS_* variables of the runner are blanked (empty counts as unset) so only these tests set them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { invoke, launch, screenshot, setField, tid, waitFor } from './harness.mjs';

const KEY = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=';
const TOKEN = 'e2e-token-123';
const ADDRESS = 'http://127.0.0.1:8200';
const NO_PROVIDER_ENV = {
  VAULT_ADDR: '',
  VAULT_TOKEN: '',
  VAULT_ROLE_ID: '',
  VAULT_SECRET_ID: '',
  VAULT_NAMESPACE: '',
  FLOW_VAULT_MOUNT: '',
  FLOW_VAULT_APPROLE_MOUNT: '',
  AWS_REGION: '',
  AWS_DEFAULT_REGION: '',
};

async function openSecrets(browser) {
  await browser.$(tid('secrets-button')).click();
  await browser.$(tid('secrets-dialog')).waitForDisplayed({ timeout: 10_000 });
  await browser.$(tid('secret-providers')).waitForExist({ timeout: 10_000 });
}

// textContent, not getText: WebKitWebDriver reads an ellipsised (overflow: hidden) span as empty.
const text = async (browser, id) => String((await browser.$(tid(id)).getProperty('textContent')) ?? '').trim();

describe('secret providers', { timeout: 180_000 }, () => {
  let app;
  let browser;
  before(async () => {
    app = await launch({ env: { ...NO_PROVIDER_ENV, FLOW_SECRETS_KEY: KEY } });
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'providers');
    await app?.close();
  });

  it('saves a Vault provider from the dialog and lists it without its token', async () => {
    await openSecrets(browser);
    assert.deepEqual(await invoke(browser, 'secret_providers'), [], 'no provider before the test');
    assert.equal(await browser.$(tid('provider-vault-mount')).getValue(), 'secret', 'the mount defaults to secret');
    assert.equal(await browser.$(tid('provider-vault-token')).getAttribute('type'), 'password');
    await setField(browser, 'provider-vault-address', ADDRESS);
    await setField(browser, 'provider-vault-token', TOKEN);
    await browser.$(tid('provider-vault-save')).click();
    await browser.$(tid('provider-row-vault')).waitForDisplayed({ timeout: 10_000, timeoutMsg: 'the vault provider is not listed' });
    assert.ok(!(await browser.$(tid('provider-error')).isExisting()), 'no error after saving');
    assert.equal(await text(browser, 'provider-target-vault'), `${ADDRESS} (mount secret)`);
    assert.equal(await text(browser, 'provider-auth-vault'), 'token');
    assert.equal(await text(browser, 'provider-source-vault'), 'stored');
    assert.ok(await browser.$(tid('provider-remove-vault')).isExisting(), 'a stored provider can be removed');
    assert.equal(await browser.$(tid('provider-vault-token')).getValue(), '', 'the token field is cleared');
    assert.equal(await browser.$(tid('provider-vault-address')).getValue(), ADDRESS, 'the address stays');
    const dialog = await browser.$(tid('secrets-dialog')).getText();
    assert.ok(!dialog.includes(TOKEN), 'the dialog never shows the token');
    await screenshot(browser, 'providers-dialog');

    const providers = await invoke(browser, 'secret_providers');
    assert.deepEqual(providers, [{ provider: 'vault', target: `${ADDRESS} (mount secret)`, auth: 'token', source: 'store' }]);
    assert.ok(!JSON.stringify(providers).includes(TOKEN), 'secret_providers returns no credential');

    const file = readFileSync(join(app.dir, 'secrets.json'), 'utf8');
    assert.ok(JSON.parse(file).providers?.vault, 'the settings are in the store');
    assert.ok(!file.includes(TOKEN), 'the store holds the token sealed');
    assert.ok(!file.includes(ADDRESS), 'the store holds the whole settings sealed');
  });

  it('removes the stored Vault provider', async () => {
    await browser.$(tid('provider-remove-vault')).click();
    await waitFor(browser, async () => !(await browser.$(tid('provider-row-vault')).isExisting()), 10_000, 'the vault provider is still listed');
    assert.ok(!(await browser.$(tid('provider-error')).isExisting()), 'no error after removing');
    assert.deepEqual(await invoke(browser, 'secret_providers'), []);
    assert.equal(await invoke(browser, 'remove_secret_provider', { provider: 'vault' }), false, 'nothing left to remove');
    const file = JSON.parse(readFileSync(join(app.dir, 'secrets.json'), 'utf8'));
    assert.ok(!file.providers?.vault, 'the settings are gone from the store');
  });
});

describe('a secret provider set by the environment', { timeout: 180_000 }, () => {
  let app;
  let browser;
  before(async () => {
    app = await launch({
      env: { ...NO_PROVIDER_ENV, FLOW_SECRETS_KEY: KEY, VAULT_ADDR: 'http://127.0.0.1:8201', VAULT_TOKEN: 'env-token-456' },
    });
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'providers-environment');
    await app?.close();
  });

  it('is listed as set by the environment, cannot be removed, and the store refuses settings for it', async () => {
    await openSecrets(browser);
    await browser.$(tid('provider-row-vault')).waitForDisplayed({ timeout: 10_000, timeoutMsg: 'the vault provider is not listed' });
    assert.equal(await text(browser, 'provider-target-vault'), 'http://127.0.0.1:8201 (mount secret)');
    assert.equal(await text(browser, 'provider-source-vault'), 'set by the environment');
    assert.ok(!(await browser.$(tid('provider-remove-vault')).isExisting()), 'no Remove for a provider the environment sets');
    assert.ok(!(await browser.$(tid('secrets-dialog')).getText()).includes('env-token-456'));

    await setField(browser, 'provider-vault-address', ADDRESS);
    await setField(browser, 'provider-vault-token', TOKEN);
    await browser.$(tid('provider-vault-save')).click();
    const error = await waitFor(
      browser,
      async () => {
        const el = await browser.$(tid('provider-error'));
        return (await el.isExisting()) ? el.getText() : null;
      },
      10_000,
      'saving a provider the environment sets shows no error',
    );
    assert.match(error, /configured by the environment \(VAULT_ADDR\)/);
    assert.equal(await text(browser, 'provider-target-vault'), 'http://127.0.0.1:8201 (mount secret)', 'the environment still wins');
    assert.deepEqual(await invoke(browser, 'secret_providers'), [
      { provider: 'vault', target: 'http://127.0.0.1:8201 (mount secret)', auth: 'token', source: 'environment' },
    ]);
  });
});
