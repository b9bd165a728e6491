import { BaseEdge, EdgeLabelRenderer, getBezierPath, type EdgeProps } from '@xyflow/react';
import { memo } from 'react';
import type { CanvasEdge } from '../model/document';
import { formatCount } from '../model/format';
import { useFlow } from '../store/context';
import { useFar } from './far';

function CountEdgeImpl(props: EdgeProps<CanvasEdge>) {
  const { id, source, sourceHandleId, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, markerEnd, selected } = props;
  const [path, labelX, labelY] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  const isError = sourceHandleId === 'error';
  // No count at far zoom (it would be unreadable): progress batches re-render no edge there.
  const far = useFar();
  const count = useFlow((s) => {
    if (far) return null;
    const c = (s.viewed ?? s.live)?.nodes[source]?.counters;
    return c ? (isError ? c.errors : c.records_out) : null;
  });
  const active = useFlow((s) => {
    const st = (s.viewed ?? s.live)?.nodes[source]?.state;
    return st === 'running' || st === 'retrying';
  });
  const cls = ['flow-edge', active ? 'active' : '', isError ? 'error-edge' : '', selected ? 'selected' : ''].join(' ');
  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd} className={cls} />
      {count !== null && (
        <EdgeLabelRenderer>
          <div
            className={`edge-count nodrag nopan ${active ? 'active' : ''}`}
            data-testid={`edge-count-${id}`}
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
          >
            {formatCount(count)}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

export const CountEdge = memo(CountEdgeImpl);
