// The Monitoring panel's alerts: what the rules raised (firing ones first), the rules, and a form
// to add one. The controller loads alerts and rules with the panel's refresh and applies the live
// events between refreshes (each also shows a notice, wherever the user is).
import { useState, type ReactNode } from 'react';
import { errorMessage } from '../api';
import type { Alert, AlertRule } from '../api/types';
import {
  afterAdd,
  ALERT_KINDS,
  alertRule,
  describeCondition,
  EMPTY_ALERT_FORM,
  isAlertKind,
  isFiring,
  orderAlerts,
  type AlertFormField,
  type AlertRuleForm,
} from '../model/alerts';
import { formatDuration } from '../model/format';
import { useApp, useController } from '../store/context';

/** The input of each field a kind may ask for. */
const FIELDS: Record<AlertFormField, { label: string; testId: string; number?: boolean; placeholder: string; hint?: string }> = {
  flow: { label: 'flow', testId: 'alert-rule-flow', placeholder: 'its name' },
  failures: { label: 'failures', testId: 'alert-rule-failures', number: true, placeholder: '3' },
  windowMinutes: { label: 'window (minutes)', testId: 'alert-rule-window', number: true, placeholder: '1 to 43200' },
  percent: { label: 'percent', testId: 'alert-rule-percent', number: true, placeholder: '0 to 100' },
  minExecutions: { label: 'min executions', testId: 'alert-rule-min-executions', number: true, placeholder: '1' },
  node: { label: 'node', testId: 'alert-rule-node', placeholder: 'its id' },
  thresholdMs: { label: 'p95 above (ms)', testId: 'alert-rule-threshold', number: true, placeholder: '1000' },
  condition: {
    label: 'condition',
    testId: 'alert-rule-condition',
    placeholder: 'failed > 3 && success_rate < 95',
    hint: 'executions, succeeded, failed, cancelled, success_rate, error_rate (percent), avg_ms, p50_ms, p95_ms, p99_ms, max_ms, cpu_percent, memory_percent, active_executions',
  },
};

function time(iso: string): string {
  // h23 rather than hour12: false, which may write midnight as 24:00.
  return new Date(iso).toLocaleString([], { hourCycle: 'h23' });
}

function AlertItem({ alert }: { alert: Alert }) {
  const firing = isFiring(alert);
  return (
    <li className={firing ? 'firing' : 'resolved'} data-testid="alert-item" data-state={firing ? 'firing' : 'resolved'} data-rule={alert.rule_name}>
      <div className="alert-head">
        <span className={`flag ${firing ? 'bad' : 'ok'}`}>{firing ? 'firing' : 'resolved'}</span>
        <strong>{alert.rule_name}</strong>
        {alert.subject && <span className="muted">{alert.subject}</span>}
        <span className="alert-time muted small">fired {time(alert.fired_at)}</span>
      </div>
      <div className="alert-msg">{alert.message}</div>
      {alert.resolved_at && (
        <div className="alert-msg muted" data-testid="alert-resolution">
          {alert.resolution} · resolved {time(alert.resolved_at)}, after {formatDuration(Date.parse(alert.resolved_at) - Date.parse(alert.fired_at))}
        </div>
      )}
    </li>
  );
}

function AlertList({ alerts }: { alerts: Alert[] | null }) {
  if (!alerts) return <div className="muted">Loading…</div>;
  if (alerts.length === 0) return <div className="muted">No alerts yet.</div>;
  return (
    <ul className="alert-list" data-testid="alert-list">
      {orderAlerts(alerts).map((a) => (
        <AlertItem key={a.id} alert={a} />
      ))}
    </ul>
  );
}

function RulesTable({ rules, busy, onDelete }: { rules: AlertRule[] | null; busy: boolean; onDelete: (id: string) => void }) {
  return (
    <div className="monitoring-table">
      <table data-testid="alert-rules">
        <thead>
          <tr>
            <th>rule</th>
            <th>fires when</th>
            <th>webhook</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(!rules || rules.length === 0) && (
            <tr>
              <td colSpan={4} className="muted">
                {rules ? 'No rules yet: add one below.' : 'Loading…'}
              </td>
            </tr>
          )}
          {rules?.map((r) => (
            <tr key={r.id} data-testid="alert-rule-row" data-name={r.name}>
              <td>{r.name}</td>
              <td data-testid="alert-rule-description">{describeCondition(r.condition)}</td>
              <td className="alert-webhook" title={r.webhook_url ?? undefined}>
                {r.webhook_url ?? '—'}
              </td>
              <td className="num">
                <button className="btn small danger" data-testid="alert-rule-delete" disabled={busy} onClick={() => onDelete(r.id)}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Field({ label, required, hint, wide, children }: { label: string; required?: boolean; hint?: string; wide?: boolean; children: ReactNode }) {
  return (
    <label className={wide ? 'field wide' : 'field'}>
      <span className="field-label">
        <span>{label}</span>
        {required && <span className="req">*</span>}
      </span>
      {children}
      {hint && <span className="muted small">{hint}</span>}
    </label>
  );
}

export function AlertsSection() {
  const controller = useController();
  const alerts = useApp((s) => s.monitoring.alerts);
  const rules = useApp((s) => s.monitoring.alertRules);
  const [form, setForm] = useState<AlertRuleForm>(EMPTY_ALERT_FORM);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const firing = alerts?.filter(isFiring).length ?? 0;
  const kind = ALERT_KINDS.find((k) => k.kind === form.kind) ?? ALERT_KINDS[0];

  const act = async (work: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try {
      await work();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  // On failure the form stays as typed, for the message beside it to be acted on.
  const add = () =>
    act(async () => {
      const rule = alertRule(form);
      if (typeof rule === 'string') throw new Error(rule);
      await controller.createAlertRule(rule);
      setForm(afterAdd);
    });

  const set = (patch: Partial<AlertRuleForm>) => setForm((f) => ({ ...f, ...patch }));

  return (
    <section className="monitoring-card alerts" data-testid="alerts-section">
      <h3>
        Alerts
        {alerts && (
          <span className={`flag ${firing > 0 ? 'bad' : 'ok'}`} data-testid="alerts-firing">
            {firing > 0 ? `${firing} firing` : 'none firing'}
          </span>
        )}
      </h3>
      <AlertList alerts={alerts} />
      <h4>Rules {rules && <span className="count">{rules.length}</span>}</h4>
      <RulesTable rules={rules} busy={busy} onDelete={(id) => void act(() => controller.deleteAlertRule(id))} />
      <form
        className="alert-rule-form"
        data-testid="alert-rule-form"
        // The engine's messages, not the webview's, say what is wrong.
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void add();
        }}
      >
        <Field label="name" required>
          <input data-testid="alert-rule-name" value={form.name} spellCheck={false} onChange={(e) => set({ name: e.target.value })} />
        </Field>
        <Field label="fires when">
          <select
            data-testid="alert-rule-kind"
            value={form.kind}
            onChange={(e) => {
              if (isAlertKind(e.target.value)) set({ kind: e.target.value });
            }}
          >
            {ALERT_KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.label}
              </option>
            ))}
          </select>
        </Field>
        {kind.fields.map(({ field, optional }) => {
          const f = FIELDS[field];
          return (
            <Field key={field} label={optional ? `${f.label} (optional)` : f.label} required={!optional} hint={f.hint} wide={field === 'condition'}>
              <input
                data-testid={f.testId}
                type={f.number ? 'number' : 'text'}
                value={form[field]}
                placeholder={f.placeholder}
                spellCheck={false}
                onChange={(e) => set({ [field]: e.target.value })}
              />
            </Field>
          );
        })}
        <Field label="webhook URL (optional)" wide>
          <input
            data-testid="alert-rule-webhook"
            type="url"
            value={form.webhookUrl}
            placeholder="https://hooks.example.com/alerts"
            spellCheck={false}
            onChange={(e) => set({ webhookUrl: e.target.value })}
          />
        </Field>
        <div className="alert-rule-submit">
          <button type="submit" className="btn primary" data-testid="alert-rule-add" disabled={busy}>
            Add rule
          </button>
          {error && (
            <div className="field-error" data-testid="alert-rule-error">
              {error}
            </div>
          )}
        </div>
      </form>
    </section>
  );
}
