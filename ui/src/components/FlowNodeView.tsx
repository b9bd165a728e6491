import { Handle, Position, type NodeProps } from '@xyflow/react';
import { memo, useCallback, useRef, useSyncExternalStore } from 'react';
import type { NodeDescriptor } from '../api/types';
import type { CanvasNode } from '../model/document';
import type { NodeLive } from '../model/execution';
import { formatCount, formatRate } from '../model/format';
import { estimatedGeometry } from '../model/layout';
import { shortMessage } from '../model/validation';
import { useController, useFlow } from '../store/context';
import { useFar } from './far';
import { NODE_STATE_ICON, type ShownState } from './icons';

/** Long messages are cut on the node; the full text is in the tooltip and the inspector. */
function clip(text: string, max = 180): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Two live entries that render the same node at far zoom, where counters are not shown. */
function sameAtFar(a: NodeLive, b: NodeLive): boolean {
  return (
    a.state === b.state &&
    a.attempt === b.attempt &&
    a.error === b.error &&
    a.counters.errors > 0 === b.counters.errors > 0 &&
    a.rate > 0 === b.rate > 0 &&
    (a.retryInMs === null) === (b.retryInMs === null)
  );
}

/**
 * The node's own live entry. At far zoom a new entry that differs only in counters keeps the one
 * shown, so progress batches re-render no node there (the layout stays as it was, too).
 */
function useNodeLive(id: string, far: boolean): NodeLive | undefined {
  const store = useController().store;
  const shown = useRef<NodeLive | undefined>(undefined);
  const snapshot = useCallback(() => {
    const s = store.getState();
    const next = (s.viewed ?? s.live)?.nodes[id];
    const prev = shown.current;
    if (far && prev && next && sameAtFar(prev, next)) return prev;
    shown.current = next;
    return next;
  }, [store, id, far]);
  return useSyncExternalStore(store.subscribe, snapshot);
}

/** A sub-flow lists at most this many of its nodes; the rest are in the list's tooltip. */
const SUBFLOW_ROWS = 6;

function subflowLine(path: string, n: NodeLive): string {
  return `${path}: ${n.state}, out ${formatCount(n.counters.records_out)}${n.error ? ` (${n.error})` : ''}`;
}

/** A `subflow` node's child execution, as its events arrived: each node's state and records out. */
function SubflowNodes({ id, nodes }: { id: string; nodes: Record<string, NodeLive> }) {
  const entries = Object.entries(nodes);
  const rest = entries.slice(SUBFLOW_ROWS);
  return (
    <ul className="fnode-subflow" data-testid={`node-subflow-${id}`}>
      {entries.slice(0, SUBFLOW_ROWS).map(([path, n]) => (
        <li key={path} data-testid={`node-subflow-${id}/${path}`} data-state={n.state} title={subflowLine(path, n)}>
          <span className={`fnode-state-icon state-${n.state}`} aria-label={n.state}>
            {NODE_STATE_ICON[n.state]}
          </span>
          <span className="path">{path}</span>
          <span className="num">out {formatCount(n.counters.records_out)}</span>
        </li>
      ))}
      {rest.length > 0 && (
        <li className="more" title={rest.map(([path, n]) => subflowLine(path, n)).join('\n')}>
          +{rest.length} more
        </li>
      )}
    </ul>
  );
}

/** `.fnode`'s top border: absolutely placed handles start below it. */
const FNODE_BORDER_TOP = 1.5;

/**
 * The node at far zoom: a box in its state's colour with handle marks where the full node has
 * its handles, and no text (a few pixels high there). Its size is the full node's without
 * counters, so edges barely move when the zoom crosses FAR_ZOOM.
 */
function FarNode({ id, desc, state, selected, problems }: { id: string; desc: NodeDescriptor; state: ShownState; selected: boolean; problems: boolean }) {
  const g = estimatedGeometry(desc);
  const classes = ['fnode', 'fnode-far', `state-${state}`, `cat-${desc.category}`, selected ? 'selected' : '', problems ? 'has-problems' : ''].join(' ');
  return (
    <div className={classes} data-testid={`node-${id}`} data-state={state} style={{ height: g.height }} title={desc.title}>
      {g.handles.map((h) => (
        // Not React Flow's <Handle> (a component with store subscriptions, times every handle
        // of every node in view): an element it measures the same way (class `source`/`target`,
        // data-handleid, data-handlepos) for the edges' ends. No connections start at far zoom.
        <div
          key={`${h.type}:${h.id}`}
          className={`react-flow__handle react-flow__handle-${h.position} ${h.type}`}
          data-handleid={h.id}
          data-handlepos={h.position}
          style={{ top: h.y + h.height / 2 - FNODE_BORDER_TOP }}
        />
      ))}
    </div>
  );
}

function FlowNodeViewImpl({ id, data, selected }: NodeProps<CanvasNode>) {
  const desc = useFlow((s) => s.catalogByType[data.type]);
  const far = useFar();
  const live = useNodeLive(id, far);
  const problems = useFlow((s) => s.validation.byNode[id]);
  // Not at far zoom, where the list is not drawn: its progress would re-render the node.
  const subflow = useFlow((s) => (far ? undefined : (s.viewed ?? s.live)?.subflows[id]));
  const state: ShownState = live?.state ?? 'idle';
  const inputs = desc?.inputs ?? [];
  const outputs = desc?.outputs ?? [];
  const rows = Math.max(inputs.length, outputs.length);
  const c = live?.counters;
  if (far && desc) return <FarNode id={id} desc={desc} state={state} selected={selected} problems={!!problems} />;
  const classes = [
    'fnode',
    `state-${state}`,
    `cat-${desc?.category ?? 'unknown'}`,
    selected ? 'selected' : '',
    problems ? 'has-problems' : '',
  ].join(' ');

  return (
    <div className={classes} data-testid={`node-${id}`} data-state={state}>
      {state === 'running' && <div className="fnode-progress" />}
      <div className="fnode-header">
        <span className={`fnode-state-icon state-${state}`} aria-label={state} title={state}>
          {NODE_STATE_ICON[state] || '◆'}
        </span>
        <div className="fnode-titles">
          <div className="fnode-name">{data.name || id}</div>
          <div className="fnode-type">{desc?.title ?? data.type}</div>
        </div>
        {live && live.attempt > 1 && <span className="fnode-attempt" title="attempt">#{live.attempt}</span>}
      </div>
      {rows > 0 && (
        <div className="fnode-ports">
          <div className="fnode-port-col in">
            {inputs.map((p) => (
              <div key={p.name} className="fnode-port" title={p.description}>
                <Handle type="target" position={Position.Left} id={p.name} className={p.multiple ? 'multi' : ''} />
                <span>{p.name}</span>
              </div>
            ))}
          </div>
          <div className="fnode-port-col out">
            {outputs.map((p) => (
              <div key={p.name} className={`fnode-port ${p.name === 'error' ? 'error-port' : ''}`} title={p.description}>
                <span>{p.name}</span>
                <Handle type="source" position={Position.Right} id={p.name} />
              </div>
            ))}
          </div>
        </div>
      )}
      {c && (
        <div className="fnode-counters" data-testid={`node-counters-${id}`}>
          <span>in {formatCount(c.records_in)}</span>
          <span> · out {formatCount(c.records_out)}</span>
          {c.errors > 0 && <span className="err"> · errors {formatCount(c.errors)}</span>}
          {state === 'running' && live.rate > 0 && <span className="rate" title="records out per second"> · {formatRate(live.rate)}</span>}
          {state === 'retrying' && live.retryInMs != null && <span className="rate"> · retrying after {live.retryInMs} ms</span>}
        </div>
      )}
      {subflow && <SubflowNodes id={id} nodes={subflow} />}
      {live?.error && (
        <div className="fnode-error" data-testid={`node-error-${id}`} title={live.error}>
          <span className="badge">!</span>
          <span className="msg">{clip(live.error)}</span>
        </div>
      )}
      {problems && (
        <div className="fnode-problems" title={problems.map((p) => p.message).join('\n')}>
          ⚠ {clip(shortMessage(problems[0]))}
          {problems.length > 1 && <span className="more"> (+{problems.length - 1} more)</span>}
        </div>
      )}
    </div>
  );
}

export const FlowNodeView = memo(FlowNodeViewImpl);
