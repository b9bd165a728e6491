import { useCallback, useState, type ReactNode } from 'react';
import type { SecretProviderName } from '../api';
import type { ProviderSettings } from '../api/types';
import {
  awsSettings,
  EMPTY_AWS_FORM,
  EMPTY_VAULT_FORM,
  isSecretProviderName,
  PROVIDER_ENV_VAR,
  vaultSettings,
  withoutAwsCredentials,
  withoutVaultCredentials,
  type AwsForm,
  type VaultAuthMethod,
  type VaultForm,
} from '../model/secretProviders';
import { useController } from '../store/context';
import { useBackendList } from './useBackendList';

const PROVIDERS: { provider: SecretProviderName; label: string }[] = [
  { provider: 'vault', label: 'HashiCorp Vault / OpenBao' },
  { provider: 'aws', label: 'AWS Secrets Manager' },
];

function Field({ label, required, hint, wide, children }: { label: string; required?: boolean; hint?: string; wide?: boolean; children: ReactNode }) {
  return (
    <div className={wide ? 'field wide' : 'field'}>
      <div className="field-label">
        <span>{label}</span>
        {required && <span className="req">*</span>}
        {hint && <span className="field-hint">{hint}</span>}
      </div>
      {children}
    </div>
  );
}

/**
 * The Secrets dialog's remote providers (`{{ secrets.vault["path#field"] }}`, `{{ secrets.aws["name"] }}`):
 * the ones set up, listed without credentials, and a form to set one up in the local store.
 */
export function ProvidersSection() {
  const controller = useController();
  const [kind, setKind] = useState<SecretProviderName>('vault');
  const [vault, setVault] = useState<VaultForm>(EMPTY_VAULT_FORM);
  const [aws, setAws] = useState<AwsForm>(EMPTY_AWS_FORM);
  const load = useCallback(() => controller.secretProviders(), [controller]);
  const { list, busy, error, act } = useBackendList(load);

  const save = () =>
    act(async () => {
      const settings: ProviderSettings | string = kind === 'vault' ? vaultSettings(vault) : awsSettings(aws);
      if (typeof settings === 'string') throw new Error(settings);
      await controller.saveSecretProvider(settings);
      if (kind === 'vault') setVault(withoutVaultCredentials);
      else setAws(withoutAwsCredentials);
    });

  const remove = (provider: SecretProviderName) =>
    act(async () => {
      await controller.removeSecretProvider(provider);
    });

  const setV = (patch: Partial<VaultForm>) => setVault((v) => ({ ...v, ...patch }));
  const setA = (patch: Partial<AwsForm>) => setAws((a) => ({ ...a, ...patch }));

  return (
    <section className="secret-providers" data-testid="secret-providers">
      <h3>Providers</h3>
      <p className="muted small">
        Vault and AWS Secrets Manager, read at run time as <code>{'{{ secrets.vault["path#field"] }}'}</code> or{' '}
        <code>{'{{ secrets.aws["name"] }}'}</code>. Settings are sealed in the store above; credentials are never shown again.
      </p>
      <ul className="secret-list">
        {list.length === 0 && <li className="muted small">No providers set up.</li>}
        {list.map((p) => {
          const stored = p.source === 'store';
          const name = isSecretProviderName(p.provider) ? p.provider : null;
          return (
            <li key={p.provider} data-testid={`provider-row-${p.provider}`}>
              <code>{p.provider}</code>
              <span className="provider-info">
                <span className="provider-target" data-testid={`provider-target-${p.provider}`} title={p.target}>
                  {p.target}
                </span>
                <span className="muted small">
                  <span data-testid={`provider-auth-${p.provider}`}>{p.auth}</span>
                  {' · '}
                  <span
                    data-testid={`provider-source-${p.provider}`}
                    title={stored ? undefined : `Unset ${name ? PROVIDER_ENV_VAR[name] : 'its variables'} to keep settings in the store.`}
                  >
                    {stored ? 'stored' : 'set by the environment'}
                  </span>
                </span>
              </span>
              {stored && name && (
                <button
                  className="btn small danger"
                  data-testid={`provider-remove-${name}`}
                  disabled={busy}
                  onClick={() => void remove(name)}
                >
                  Remove
                </button>
              )}
            </li>
          );
        })}
      </ul>
      <div className="provider-fields">
        <Field label="set up" wide>
          <select data-testid="provider-kind" value={kind} onChange={(e) => setKind(e.target.value as SecretProviderName)}>
            {PROVIDERS.map((p) => (
              <option key={p.provider} value={p.provider}>
                {p.label}
              </option>
            ))}
          </select>
        </Field>
        {kind === 'vault' ? (
          <>
            <Field label="address" required wide>
              <input
                data-testid="provider-vault-address"
                value={vault.address}
                placeholder="https://vault.example.com:8200"
                spellCheck={false}
                onChange={(e) => setV({ address: e.target.value })}
              />
            </Field>
            <Field label="mount" hint="KV v2">
              <input data-testid="provider-vault-mount" value={vault.mount} placeholder="secret" spellCheck={false} onChange={(e) => setV({ mount: e.target.value })} />
            </Field>
            <Field label="namespace" hint="optional">
              <input data-testid="provider-vault-namespace" value={vault.namespace} spellCheck={false} onChange={(e) => setV({ namespace: e.target.value })} />
            </Field>
            <Field label="auth">
              <select data-testid="provider-vault-auth" value={vault.method} onChange={(e) => setV({ method: e.target.value as VaultAuthMethod })}>
                <option value="token">token</option>
                <option value="app_role">AppRole</option>
              </select>
            </Field>
            {vault.method === 'token' ? (
              <Field label="token" required>
                <input data-testid="provider-vault-token" type="password" autoComplete="off" value={vault.token} onChange={(e) => setV({ token: e.target.value })} />
              </Field>
            ) : (
              <>
                <Field label="AppRole mount">
                  <input
                    data-testid="provider-vault-approle-mount"
                    value={vault.appRoleMount}
                    placeholder="approle"
                    spellCheck={false}
                    onChange={(e) => setV({ appRoleMount: e.target.value })}
                  />
                </Field>
                <Field label="role id" required>
                  <input data-testid="provider-vault-role-id" value={vault.roleId} autoComplete="off" spellCheck={false} onChange={(e) => setV({ roleId: e.target.value })} />
                </Field>
                <Field label="secret id" required>
                  <input data-testid="provider-vault-secret-id" type="password" autoComplete="off" value={vault.secretId} onChange={(e) => setV({ secretId: e.target.value })} />
                </Field>
              </>
            )}
          </>
        ) : (
          <>
            <Field label="region" required>
              <input data-testid="provider-aws-region" value={aws.region} placeholder="eu-west-1" spellCheck={false} onChange={(e) => setA({ region: e.target.value })} />
            </Field>
            <Field label="endpoint" hint="optional">
              <input
                data-testid="provider-aws-endpoint"
                value={aws.endpoint}
                placeholder="http://localhost:4566"
                spellCheck={false}
                onChange={(e) => setA({ endpoint: e.target.value })}
              />
            </Field>
            <Field label="access key id" required>
              <input data-testid="provider-aws-access-key-id" value={aws.accessKeyId} autoComplete="off" spellCheck={false} onChange={(e) => setA({ accessKeyId: e.target.value })} />
            </Field>
            <Field label="secret access key" required>
              <input
                data-testid="provider-aws-secret-access-key"
                type="password"
                autoComplete="off"
                value={aws.secretAccessKey}
                onChange={(e) => setA({ secretAccessKey: e.target.value })}
              />
            </Field>
          </>
        )}
      </div>
      {error && (
        <div className="field-error" data-testid="provider-error">
          {error}
        </div>
      )}
      <div className="row-buttons">
        <button className="btn primary" data-testid={`provider-${kind}-save`} disabled={busy} onClick={() => void save()}>
          Save
        </button>
      </div>
    </section>
  );
}
