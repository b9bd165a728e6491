import { useState } from 'react';
import { fromRows, toRows, type VarRow } from '../model/variables';
import { useController } from '../store/context';
import { Modal } from './Modal';

export function VariablesDialog({ onClose }: { onClose: () => void }) {
  const store = useController().store;
  const [rows, setRows] = useState<VarRow[]>(() => {
    const r = toRows(store.getState().meta.variables);
    return r.length > 0 ? r : [{ key: '', value: '' }];
  });
  const parsed = fromRows(rows);
  const error = 'error' in parsed ? parsed.error : null;
  const update = (i: number, patch: Partial<VarRow>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  const save = () => {
    if ('vars' in parsed) {
      store.getState().setVariables(parsed.vars);
      onClose();
    }
  };

  return (
    <Modal
      title="Flow variables"
      onClose={onClose}
      testId="variables-dialog"
      footer={
        <>
          {error && <span className="field-error">{error}</span>}
          <button className="btn" onClick={onClose}>
            Cancel
          </button>
          <button className="btn primary" data-testid="variables-save" disabled={!!error} onClick={save}>
            Apply
          </button>
        </>
      }
    >
      <p className="muted small">
        Available in string params as <code>{'{{ vars.NAME }}'}</code>. Values are JSON when they parse as JSON
        (<code>42</code>, <code>true</code>, <code>["a"]</code>), text otherwise.
      </p>
      <div className="var-rows">
        {rows.map((r, i) => (
          <div key={i} className="var-row">
            <input data-testid={`variable-key-${i}`} placeholder="name" value={r.key} onChange={(e) => update(i, { key: e.target.value })} />
            <input
              data-testid={`variable-value-${i}`}
              placeholder="value"
              value={r.value}
              onChange={(e) => update(i, { value: e.target.value })}
            />
            <button className="icon-btn" data-testid={`variable-remove-${i}`} title="Remove" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
              ×
            </button>
          </div>
        ))}
      </div>
      <button className="btn small" data-testid="variable-add" onClick={() => setRows([...rows, { key: '', value: '' }])}>
        + Add variable
      </button>
    </Modal>
  );
}
