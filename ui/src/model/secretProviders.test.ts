import { describe, expect, it } from 'vitest';
import { awsSettings, EMPTY_AWS_FORM, EMPTY_VAULT_FORM, vaultSettings, withoutAwsCredentials, withoutVaultCredentials } from './secretProviders';

describe('vault settings from the form', () => {
  it('builds token auth with the default mount and no namespace', () => {
    expect(vaultSettings({ ...EMPTY_VAULT_FORM, address: ' http://127.0.0.1:8200 ', token: ' s.abc\n' })).toEqual({
      provider: 'vault',
      address: 'http://127.0.0.1:8200',
      auth: { token: 's.abc' },
      namespace: null,
      mount: 'secret',
    });
  });

  it('builds AppRole auth, a namespace and a mount', () => {
    const form = { ...EMPTY_VAULT_FORM, address: 'https://vault:8200', mount: 'kv', namespace: 'team', method: 'app_role' as const, roleId: 'r-1', secretId: 's-1', token: 'ignored' };
    expect(vaultSettings(form)).toEqual({
      provider: 'vault',
      address: 'https://vault:8200',
      auth: { app_role: { mount: 'approle', role_id: 'r-1', secret_id: 's-1' } },
      namespace: 'team',
      mount: 'kv',
    });
  });

  it('falls back to the default mounts when they are blanked', () => {
    const s = vaultSettings({ ...EMPTY_VAULT_FORM, address: 'http://v', mount: ' ', method: 'app_role', appRoleMount: '', roleId: 'r', secretId: 's' });
    expect(s).toMatchObject({ mount: 'secret', auth: { app_role: { mount: 'approle' } } });
  });

  it('says what is missing', () => {
    expect(vaultSettings({ ...EMPTY_VAULT_FORM, token: 't' })).toMatch(/address/);
    expect(vaultSettings({ ...EMPTY_VAULT_FORM, address: 'vault:8200', token: 't' })).toMatch(/http/);
    expect(vaultSettings({ ...EMPTY_VAULT_FORM, address: 'http://v' })).toMatch(/token/);
    expect(vaultSettings({ ...EMPTY_VAULT_FORM, address: 'http://v', method: 'app_role', secretId: 's' })).toMatch(/role id/);
    expect(vaultSettings({ ...EMPTY_VAULT_FORM, address: 'http://v', method: 'app_role', roleId: 'r' })).toMatch(/secret id/);
  });

  it('clears only the credentials after a save', () => {
    const form = { ...EMPTY_VAULT_FORM, address: 'http://v', namespace: 'n', token: 't', roleId: 'r', secretId: 's' };
    expect(withoutVaultCredentials(form)).toEqual({ ...EMPTY_VAULT_FORM, address: 'http://v', namespace: 'n' });
  });
});

describe('aws settings from the form', () => {
  it('builds the settings, no endpoint when blank', () => {
    expect(awsSettings({ region: ' eu-west-1 ', endpoint: ' ', accessKeyId: 'AKIA1', secretAccessKey: 'sk' })).toEqual({
      provider: 'aws',
      region: 'eu-west-1',
      endpoint: null,
      credentials: { access_key_id: 'AKIA1', secret_access_key: 'sk', session_token: null },
    });
  });

  it('keeps an endpoint', () => {
    expect(awsSettings({ region: 'us-east-1', endpoint: 'http://localhost:4566', accessKeyId: 'a', secretAccessKey: 'b' })).toMatchObject({
      endpoint: 'http://localhost:4566',
    });
  });

  it('says what is missing', () => {
    expect(awsSettings({ ...EMPTY_AWS_FORM, accessKeyId: 'a', secretAccessKey: 'b' })).toMatch(/region/);
    expect(awsSettings({ region: 'r', endpoint: 'localhost:4566', accessKeyId: 'a', secretAccessKey: 'b' })).toMatch(/endpoint/);
    expect(awsSettings({ ...EMPTY_AWS_FORM, region: 'r', secretAccessKey: 'b' })).toMatch(/access key id/);
    expect(awsSettings({ ...EMPTY_AWS_FORM, region: 'r', accessKeyId: 'a' })).toMatch(/secret access key/);
  });

  it('clears only the credentials after a save', () => {
    expect(withoutAwsCredentials({ region: 'r', endpoint: 'e', accessKeyId: 'a', secretAccessKey: 'b' })).toEqual({ region: 'r', endpoint: 'e', accessKeyId: '', secretAccessKey: '' });
  });
});
