import { useCallback, useState } from 'react';
import { useController } from '../store/context';
import { Modal } from './Modal';
import { ProvidersSection } from './SecretProviders';
import { useBackendList } from './useBackendList';

/** The local encrypted secrets (`{{ secrets.NAME }}`): names and dates listed, values only written. */
export function SecretsDialog({ onClose }: { onClose: () => void }) {
  const controller = useController();
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const load = useCallback(() => controller.listSecrets(), [controller]);
  const { list, busy, error, act } = useBackendList(load);

  const save = () =>
    act(async () => {
      if (!name.trim()) throw new Error('A secret needs a name.');
      if (!value) throw new Error('A secret needs a value.');
      await controller.setSecret(name.trim(), value);
      setName('');
      setValue('');
    });

  return (
    <Modal title="Secrets" onClose={onClose} testId="secrets-dialog">
      <p className="muted small">
        Encrypted on this machine, the key in the OS keyring. Use one in a param or a connection URL as{' '}
        <code>{'{{ secrets.NAME }}'}</code>; values are never shown again and are scrubbed from errors, events and history.
      </p>
      <ul className="secret-list">
        {list.length === 0 && <li className="muted small">No secrets yet.</li>}
        {list.map((s) => (
          <li key={s.name} data-testid={`secret-item-${s.name}`}>
            <code>{s.name}</code>
            <span className="muted small">set {new Date(s.updated_at).toLocaleString()}</span>
            <button className="btn small danger" data-testid={`secret-delete-${s.name}`} disabled={busy} onClick={() => void act(() => controller.deleteSecret(s.name))}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <div className="field">
        <div className="field-label">
          <span>name</span>
          <span className="req">*</span>
        </div>
        <input data-testid="secret-name" value={name} spellCheck={false} onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field">
        <div className="field-label">
          <span>value</span>
          <span className="req">*</span>
        </div>
        <input data-testid="secret-value" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} />
      </div>
      {error && (
        <div className="field-error" data-testid="secret-error">
          {error}
        </div>
      )}
      <div className="row-buttons">
        <button className="btn primary" data-testid="secret-save" disabled={busy} onClick={() => void save()}>
          Save
        </button>
      </div>
      <ProvidersSection />
    </Modal>
  );
}
