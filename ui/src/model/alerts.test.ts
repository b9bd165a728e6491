import { describe, expect, it } from 'vitest';
import type { Alert, AlertRule } from '../api/types';
import {
  afterAdd,
  ALERT_KINDS,
  alertNotice,
  alertRule,
  describeCondition,
  EMPTY_ALERT_FORM,
  isAlertKind,
  orderAlerts,
  windowText,
  withAlert,
  withRule,
  type AlertRuleForm,
} from './alerts';

function form(patch: Partial<AlertRuleForm>): AlertRuleForm {
  return { ...EMPTY_ALERT_FORM, name: 'rule', ...patch };
}

function alert(id: string, resolved: boolean): Alert {
  return {
    id,
    rule_id: 'r-1',
    rule_name: 'orders failing',
    subject: '',
    message: `alert ${id}`,
    value: null,
    fired_at: '2025-01-01T00:00:00Z',
    resolved_at: resolved ? '2025-01-01T00:05:00Z' : null,
    resolution: resolved ? 'flow `orders` succeeded' : null,
  };
}

function rule(name: string): AlertRule {
  return { id: `id-${name}`, name, condition: { kind: 'memory_above', percent: 80 }, webhook_url: null, created_at: '2025-01-01T00:00:00Z' };
}

describe('the Add rule form', () => {
  it('builds each kind from its own fields only', () => {
    const all = form({
      name: ' orders failing ',
      percent: '95.5',
      windowMinutes: '5',
      flow: ' orders ',
      failures: '1',
      minExecutions: '10',
      node: ' load ',
      thresholdMs: '1500',
      condition: ' failed > 3 ',
      webhookUrl: ' https://hooks.example.com/a ',
    });
    const condition = (kind: AlertRuleForm['kind']) => {
      const built = alertRule({ ...all, kind });
      if (typeof built === 'string') throw new Error(built);
      return built.condition;
    };
    expect(alertRule({ ...all, kind: 'flow_failing' })).toEqual({
      name: 'orders failing',
      condition: { kind: 'flow_failing', flow: 'orders', failures: 1, window_minutes: 5 },
      webhook_url: 'https://hooks.example.com/a',
    });
    expect(condition('memory_above')).toEqual({ kind: 'memory_above', percent: 95.5 });
    expect(condition('success_rate_below')).toEqual({ kind: 'success_rate_below', percent: 95.5, window_minutes: 5, flow: 'orders', min_executions: 10 });
    expect(condition('node_p95_above')).toEqual({ kind: 'node_p95_above', flow: 'orders', node: 'load', threshold_ms: 1500, window_minutes: 5 });
    expect(condition('custom')).toEqual({ kind: 'custom', condition: 'failed > 3', window_minutes: 5, flow: 'orders' });
  });

  it('leaves out the optional fields left blank', () => {
    expect(alertRule(form({ kind: 'success_rate_below', percent: '90', windowMinutes: '60', flow: ' ', minExecutions: '' }))).toEqual({
      name: 'rule',
      condition: { kind: 'success_rate_below', percent: 90, window_minutes: 60, flow: undefined, min_executions: undefined },
      webhook_url: undefined,
    });
    expect(alertRule(form({ kind: 'custom', condition: 'failed > 0' }))).toMatchObject({ condition: { flow: undefined } });
  });

  it('says which numbers are blank or not numbers, one line each, and leaves ranges to the engine', () => {
    expect(alertRule(form({ kind: 'flow_failing', flow: 'f', failures: '', windowMinutes: 'abc' }))).toBe(
      'Failures: give a number.\nWindow (minutes): give a number.',
    );
    expect(alertRule(form({ kind: 'node_p95_above', flow: 'f', node: 'n', thresholdMs: '2.5', windowMinutes: '-1' }))).toBe(
      'Threshold (ms): give a whole number.\nWindow (minutes): give a whole number.',
    );
    expect(alertRule(form({ kind: 'memory_above', percent: ' ' }))).toBe('Percent: give a number.');
    expect(alertRule(form({ kind: 'success_rate_below', percent: '90', minExecutions: 'x' }))).toBe('Minimum executions: give a number.');
    expect(alertRule(form({ name: ' ', kind: 'memory_above', percent: '80' }))).toBe('A rule needs a name.');
    expect(alertRule(form({ kind: 'flow_failing', flow: 'f', failures: '1', windowMinutes: '0' }))).toMatchObject({ condition: { window_minutes: 0 } });
    expect(alertRule(form({ kind: 'memory_above', percent: '140' }))).toMatchObject({ condition: { percent: 140 } });
  });

  it('starts again empty after an add, on the same kind', () => {
    expect(afterAdd(form({ kind: 'custom', condition: 'failed > 1', windowMinutes: '30' }))).toEqual({ ...EMPTY_ALERT_FORM, kind: 'custom' });
  });

  it('offers every kind once', () => {
    expect(ALERT_KINDS.map((k) => k.kind).sort()).toEqual(['custom', 'flow_failing', 'memory_above', 'node_p95_above', 'success_rate_below']);
    expect(isAlertKind('flow_failing')).toBe(true);
    expect(isAlertKind('cpu_above')).toBe(false);
  });
});

describe('conditions in one line', () => {
  it('says windows in their largest whole unit', () => {
    expect([1, 15, 60, 90, 120, 1440, 43200].map(windowText)).toEqual([
      'the last minute',
      'the last 15 minutes',
      'the last hour',
      'the last 90 minutes',
      'the last 2 hours',
      'the last day',
      'the last 30 days',
    ]);
  });

  it('describes each kind', () => {
    expect(describeCondition({ kind: 'memory_above', percent: 80 })).toBe('Memory in use above 80 %');
    expect(describeCondition({ kind: 'success_rate_below', percent: 95, window_minutes: 60 })).toBe('Success rate below 95 % over the last hour');
    expect(describeCondition({ kind: 'success_rate_below', percent: 95, window_minutes: 30, flow: 'orders', min_executions: 10 })).toBe(
      'Success rate of “orders” below 95 % over the last 30 minutes, from 10 executions',
    );
    expect(describeCondition({ kind: 'flow_failing', flow: 'orders', failures: 1, window_minutes: 5 })).toBe(
      'Flow “orders” failed at least once in the last 5 minutes, its latest run too',
    );
    expect(describeCondition({ kind: 'flow_failing', flow: 'orders', failures: 3, window_minutes: 1 })).toBe(
      'Flow “orders” failed at least 3 times in the last minute, its latest run too',
    );
    expect(describeCondition({ kind: 'node_p95_above', flow: 'orders', node: 'load', threshold_ms: 2500, window_minutes: 15 })).toBe(
      'p95 of node “load” of “orders” above 2.50 s over the last 15 minutes',
    );
    expect(describeCondition({ kind: 'custom', condition: 'failed > 3 && success_rate < 95', window_minutes: 60 })).toBe(
      'failed > 3 && success_rate < 95 over the last hour',
    );
  });
});

describe('the alert list', () => {
  it('puts the firing alerts first, each part in the engine’s order', () => {
    const list = [alert('d', true), alert('c', false), alert('b', true), alert('a', false)];
    expect(orderAlerts(list).map((a) => a.id)).toEqual(['c', 'a', 'd', 'b']);
  });

  it('replaces an alert that resolves, and puts one that fires first', () => {
    const list = [alert('b', false), alert('a', true)];
    expect(withAlert(list, alert('b', true))).toEqual([alert('b', true), alert('a', true)]);
    expect(withAlert(list, alert('c', false)).map((a) => a.id)).toEqual(['c', 'b', 'a']);
  });

  it('keeps the rules by name', () => {
    expect(withRule([rule('cpu'), rule('memory')], rule('flows')).map((r) => r.name)).toEqual(['cpu', 'flows', 'memory']);
    expect(withRule([rule('cpu')], rule('cpu'))).toEqual([rule('cpu')]);
  });

  it('words the notices', () => {
    expect(alertNotice({ change: 'fired', alert: alert('a', false) })).toEqual({ kind: 'error', message: 'Alert “orders failing”: alert a' });
    expect(alertNotice({ change: 'resolved', alert: alert('a', true) })).toEqual({ kind: 'success', message: 'Resolved “orders failing”: flow `orders` succeeded' });
  });
});
