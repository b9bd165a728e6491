// The Secrets dialog's provider forms (Vault, AWS Secrets Manager): what the inputs hold, and the
// `ProviderSettings` the engine keeps, or why the form cannot be saved yet.
import type { SecretProviderName } from '../api';
import type { ProviderSettings, VaultAuth } from '../api/types';

export function isSecretProviderName(s: string): s is SecretProviderName {
  return s === 'vault' || s === 'aws';
}

/** The variable that makes the environment configure a provider (and the store's settings ignored). */
export const PROVIDER_ENV_VAR: Record<SecretProviderName, string> = { vault: 'VAULT_ADDR', aws: 'AWS_REGION' };

export type VaultAuthMethod = 'token' | 'app_role';

export interface VaultForm {
  address: string;
  /** The KV v2 mount; empty means the engine's default, `secret`. */
  mount: string;
  /** Optional (Vault Enterprise / OpenBao namespaces). */
  namespace: string;
  method: VaultAuthMethod;
  token: string;
  /** The AppRole auth mount; empty means `approle`. */
  appRoleMount: string;
  roleId: string;
  secretId: string;
}

export interface AwsForm {
  region: string;
  /** Optional: somewhere other than AWS (e.g. LocalStack). */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export const DEFAULT_VAULT_MOUNT = 'secret';
export const DEFAULT_APPROLE_MOUNT = 'approle';

export const EMPTY_VAULT_FORM: VaultForm = {
  address: '',
  mount: DEFAULT_VAULT_MOUNT,
  namespace: '',
  method: 'token',
  token: '',
  appRoleMount: DEFAULT_APPROLE_MOUNT,
  roleId: '',
  secretId: '',
};

export const EMPTY_AWS_FORM: AwsForm = { region: '', endpoint: '', accessKeyId: '', secretAccessKey: '' };

const optional = (s: string): string | null => s.trim() || null;

/** Vault settings from the form, or a message saying what is missing. */
export function vaultSettings(f: VaultForm): ProviderSettings | string {
  const address = f.address.trim();
  if (!address) return 'Vault needs an address, e.g. https://vault.example.com:8200.';
  if (!/^https?:\/\/\S+$/i.test(address)) return 'The Vault address is a URL starting with http:// or https://.';
  let auth: VaultAuth;
  if (f.method === 'token') {
    const token = f.token.trim();
    if (!token) return 'Vault needs a token.';
    auth = { token };
  } else {
    const role_id = f.roleId.trim();
    const secret_id = f.secretId.trim();
    if (!role_id) return 'AppRole needs a role id.';
    if (!secret_id) return 'AppRole needs a secret id.';
    auth = { app_role: { mount: f.appRoleMount.trim() || DEFAULT_APPROLE_MOUNT, role_id, secret_id } };
  }
  return { provider: 'vault', address, auth, namespace: optional(f.namespace), mount: f.mount.trim() || DEFAULT_VAULT_MOUNT };
}

/** AWS Secrets Manager settings from the form, or a message saying what is missing. */
export function awsSettings(f: AwsForm): ProviderSettings | string {
  const region = f.region.trim();
  if (!region) return 'AWS needs a region, e.g. eu-west-1.';
  const endpoint = optional(f.endpoint);
  if (endpoint && !/^https?:\/\/\S+$/i.test(endpoint)) return 'The AWS endpoint is a URL starting with http:// or https://.';
  const access_key_id = f.accessKeyId.trim();
  const secret_access_key = f.secretAccessKey.trim();
  if (!access_key_id) return 'AWS needs an access key id.';
  if (!secret_access_key) return 'AWS needs a secret access key.';
  return { provider: 'aws', region, endpoint, credentials: { access_key_id, secret_access_key, session_token: null } };
}

/** The form after a save: where it points stays, the credentials go (they are never read back). */
export function withoutVaultCredentials(f: VaultForm): VaultForm {
  return { ...f, token: '', roleId: '', secretId: '' };
}

export function withoutAwsCredentials(f: AwsForm): AwsForm {
  return { ...f, accessKeyId: '', secretAccessKey: '' };
}
