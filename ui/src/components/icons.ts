import type { ExecutionState, NodeState } from '../api/types';

export type ShownState = NodeState | 'idle';

export const NODE_STATE_ICON: Record<ShownState, string> = {
  idle: '',
  pending: '○',
  running: '⟳',
  retrying: '↻',
  paused: '❚❚',
  succeeded: '✓',
  failed: '✕',
  skipped: '⤼',
  cancelled: '⊘',
};

export const EXECUTION_STATE_ICON: Record<ExecutionState | 'idle' | 'starting', string> = {
  idle: '•',
  starting: '⟳',
  queued: '…',
  running: '⟳',
  paused: '❚❚',
  succeeded: '✓',
  failed: '✕',
  cancelled: '⊘',
};

export const CATEGORY_LABEL: Record<string, string> = {
  source: 'Sources',
  transform: 'Transforms',
  sink: 'Sinks',
  control: 'Control',
  testing: 'Testing',
};

export const CATEGORY_ORDER = ['source', 'transform', 'sink', 'control', 'testing'];
