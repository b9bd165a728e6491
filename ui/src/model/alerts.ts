// The Monitoring panel's alerts: the list as the engine and its live events make it, a rule's
// condition in one line, and the Add rule form: what its inputs hold, and the `NewAlertRule` the
// engine checks, or why the form cannot be sent yet. Ranges are the engine's to check: its
// message names the field.
import type { Alert, AlertCondition, AlertEvent, AlertRule, NewAlertRule } from '../api/types';
import { formatDuration } from './format';

export type AlertKind = AlertCondition['kind'];

/** The Add rule form's inputs, as typed (numbers too): fields of other kinds keep their text. */
export interface AlertRuleForm {
  name: string;
  kind: AlertKind;
  percent: string;
  windowMinutes: string;
  flow: string;
  failures: string;
  minExecutions: string;
  node: string;
  thresholdMs: string;
  condition: string;
  webhookUrl: string;
}

export type AlertFormField = Exclude<keyof AlertRuleForm, 'name' | 'kind' | 'webhookUrl'>;

/** The kinds on offer, and the fields each asks for (`optional` ones may stay blank). */
export const ALERT_KINDS: readonly { kind: AlertKind; label: string; fields: readonly { field: AlertFormField; optional?: boolean }[] }[] = [
  { kind: 'flow_failing', label: 'A flow keeps failing', fields: [{ field: 'flow' }, { field: 'failures' }, { field: 'windowMinutes' }] },
  {
    kind: 'success_rate_below',
    label: 'Success rate below',
    fields: [{ field: 'percent' }, { field: 'windowMinutes' }, { field: 'flow', optional: true }, { field: 'minExecutions', optional: true }],
  },
  { kind: 'node_p95_above', label: 'A node’s p95 above', fields: [{ field: 'flow' }, { field: 'node' }, { field: 'thresholdMs' }, { field: 'windowMinutes' }] },
  { kind: 'memory_above', label: 'Memory in use above', fields: [{ field: 'percent' }] },
  { kind: 'custom', label: 'Custom condition', fields: [{ field: 'condition' }, { field: 'windowMinutes' }, { field: 'flow', optional: true }] },
];

export function isAlertKind(text: string): text is AlertKind {
  return ALERT_KINDS.some((k) => k.kind === text);
}

export const EMPTY_ALERT_FORM: AlertRuleForm = {
  name: '',
  kind: 'flow_failing',
  percent: '',
  windowMinutes: '15',
  flow: '',
  failures: '3',
  minExecutions: '',
  node: '',
  thresholdMs: '',
  condition: '',
  webhookUrl: '',
};

/** The form after an add: ready for another rule of the same kind. */
export function afterAdd(f: AlertRuleForm): AlertRuleForm {
  return { ...EMPTY_ALERT_FORM, kind: f.kind };
}

const optional = (s: string): string | undefined => s.trim() || undefined;

/** The rule the form describes, or what is wrong with it, one line a field. */
export function alertRule(f: AlertRuleForm): NewAlertRule | string {
  const problems: string[] = [];
  if (!f.name.trim()) problems.push('A rule needs a name.');
  // Numbers the engine keeps as unsigned integers are whole; blank or not a number is refused
  // here, since the engine would only say that the rule does not parse.
  const number = (text: string, label: string, whole: boolean): number => {
    const n = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(n)) problems.push(`${label}: give a number.`);
    else if (whole && (!Number.isInteger(n) || n < 0)) problems.push(`${label}: give a whole number.`);
    return n;
  };
  const percent = () => number(f.percent, 'Percent', false);
  const minutes = () => number(f.windowMinutes, 'Window (minutes)', true);
  let condition: AlertCondition;
  switch (f.kind) {
    case 'memory_above':
      condition = { kind: 'memory_above', percent: percent() };
      break;
    case 'success_rate_below':
      condition = {
        kind: 'success_rate_below',
        percent: percent(),
        window_minutes: minutes(),
        flow: optional(f.flow),
        min_executions: f.minExecutions.trim() ? number(f.minExecutions, 'Minimum executions', true) : undefined,
      };
      break;
    case 'flow_failing':
      condition = { kind: 'flow_failing', flow: f.flow.trim(), failures: number(f.failures, 'Failures', true), window_minutes: minutes() };
      break;
    case 'node_p95_above':
      condition = {
        kind: 'node_p95_above',
        flow: f.flow.trim(),
        node: f.node.trim(),
        threshold_ms: number(f.thresholdMs, 'Threshold (ms)', true),
        window_minutes: minutes(),
      };
      break;
    case 'custom':
      condition = { kind: 'custom', condition: f.condition.trim(), window_minutes: minutes(), flow: optional(f.flow) };
      break;
  }
  if (problems.length > 0) return problems.join('\n');
  return { name: f.name.trim(), condition, webhook_url: optional(f.webhookUrl) };
}

/** A window as people say it: the last minute, the last 15 minutes, the last 2 hours, the last day. */
export function windowText(minutes: number): string {
  const last = (n: number, unit: string) => (n === 1 ? `the last ${unit}` : `the last ${n} ${unit}s`);
  if (minutes > 0 && minutes % 1440 === 0) return last(minutes / 1440, 'day');
  if (minutes > 0 && minutes % 60 === 0) return last(minutes / 60, 'hour');
  return last(minutes, 'minute');
}

/** A rule's condition in one line, e.g. Flow “orders” failed at least 3 times in the last 15 minutes, its latest run too. */
export function describeCondition(c: AlertCondition): string {
  const of = (flow: string | null | undefined) => (flow ? ` of “${flow}”` : '');
  switch (c.kind) {
    case 'memory_above':
      return `Memory in use above ${c.percent} %`;
    case 'success_rate_below': {
      const least = c.min_executions ? `, from ${c.min_executions} executions` : '';
      return `Success rate${of(c.flow)} below ${c.percent} % over ${windowText(c.window_minutes)}${least}`;
    }
    case 'flow_failing': {
      const times = c.failures === 1 ? 'once' : `${c.failures} times`;
      return `Flow “${c.flow}” failed at least ${times} in ${windowText(c.window_minutes)}, its latest run too`;
    }
    case 'node_p95_above':
      return `p95 of node “${c.node}”${of(c.flow)} above ${formatDuration(c.threshold_ms)} over ${windowText(c.window_minutes)}`;
    case 'custom':
      return `${c.condition} over ${windowText(c.window_minutes)}${of(c.flow)}`;
  }
}

export function isFiring(alert: Alert): boolean {
  return alert.resolved_at === null;
}

/** Firing alerts first, each part newest first as the engine lists them. */
export function orderAlerts(alerts: readonly Alert[]): Alert[] {
  return [...alerts.filter(isFiring), ...alerts.filter((a) => !isFiring(a))];
}

/** The list after a live event: the alert replaces its older self, or comes first as the newest. */
export function withAlert(alerts: readonly Alert[], alert: Alert): Alert[] {
  return alerts.some((a) => a.id === alert.id) ? alerts.map((a) => (a.id === alert.id ? alert : a)) : [alert, ...alerts];
}

/** The rules after one is added: by name, as the engine lists them. */
export function withRule(rules: readonly AlertRule[], rule: AlertRule): AlertRule[] {
  return [...rules.filter((r) => r.id !== rule.id), rule].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** What the notice of a live event says. */
export function alertNotice(event: AlertEvent): { kind: 'error' | 'success'; message: string } {
  const { alert } = event;
  return event.change === 'fired'
    ? { kind: 'error', message: `Alert “${alert.rule_name}”: ${alert.message}` }
    : { kind: 'success', message: `Resolved “${alert.rule_name}”: ${alert.resolution ?? alert.message}` };
}
