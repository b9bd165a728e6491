import {
  Background,
  BackgroundVariant,
  ConnectionMode,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type InternalNode,
} from '@xyflow/react';
import { useCallback, useEffect, type DragEvent } from 'react';
import type { CanvasEdge, CanvasNode } from '../model/document';
import { DEFAULT_NODE_WIDTH } from '../model/layout';
import { useApp, useController, useFlow } from '../store/context';
import { ConnectError } from './ConnectError';
import { CountEdge } from './CountEdge';
import { FlowNodeView } from './FlowNodeView';
import { NODE_TYPE_MIME } from './Palette';
import { ViewingBanner } from './ViewingBanner';

// Declared once at module scope: React Flow re-mounts every node when these objects change.
const nodeTypes = { flow: FlowNodeView };
const edgeTypes = { flow: CountEdge };
const defaultEdgeOptions = { type: 'flow', markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 } };
const SNAP: [number, number] = [10, 10];
const FIT = { padding: 0.2, maxZoom: 1.25 };
const MINIMAP_STYLE = { width: 160, height: 110 };

function miniMapColor(n: CanvasNode): string {
  return n.selected ? 'var(--accent)' : 'var(--minimap-node)';
}

export function Canvas() {
  const controller = useController();
  const store = controller.store;
  const nodes = useFlow((s) => s.nodes);
  const edges = useFlow((s) => s.edges);
  const fitRequest = useFlow((s) => s.fitRequest);
  const theme = useApp((s) => s.settings.theme);
  const { screenToFlowPosition, fitView } = useReactFlow();

  useEffect(() => {
    if (fitRequest === 0) return;
    // Let the new nodes be measured before fitting.
    const t = setTimeout(() => void fitView({ ...FIT, duration: 200 }), 60);
    return () => clearTimeout(t);
  }, [fitRequest, fitView]);

  const isValidConnection = useCallback(
    (c: Edge | Connection) => {
      const s = store.getState();
      const problem = s.checkConnection(c);
      if (problem && s.connectError?.message !== problem) s.showConnectError(problem);
      return problem === null;
    },
    [store],
  );

  const onConnect = useCallback((c: Connection) => void store.getState().connect(c), [store]);

  const onConnectEnd = useCallback(
    (_e: MouseEvent | TouchEvent, state: FinalConnectionState<InternalNode>) => {
      if (state.isValid !== false || !state.fromHandle || !state.toHandle) return;
      // Normalise to source -> target whichever end the drag started from.
      const [src, dst] = state.fromHandle.type === 'source' ? [state.fromHandle, state.toHandle] : [state.toHandle, state.fromHandle];
      const s = store.getState();
      const problem = s.checkConnection({ source: src.nodeId, sourceHandle: src.id ?? null, target: dst.nodeId, targetHandle: dst.id ?? null });
      s.showConnectError(problem ?? 'These ports cannot be connected');
    },
    [store],
  );

  const onDragOver = useCallback((e: DragEvent) => {
    if (Array.from(e.dataTransfer.types).includes(NODE_TYPE_MIME)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = 'move';
    }
  }, []);

  const onDrop = useCallback(
    (e: DragEvent) => {
      const type = e.dataTransfer.getData(NODE_TYPE_MIME);
      if (!type) return;
      e.preventDefault();
      const p = screenToFlowPosition({ x: e.clientX, y: e.clientY });
      store.getState().addNode(type, { x: p.x - DEFAULT_NODE_WIDTH / 2, y: p.y - 20 });
    },
    [screenToFlowPosition, store],
  );

  return (
    <div className="canvas-wrap">
      <ReactFlow<CanvasNode, CanvasEdge>
        data-testid="canvas"
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        defaultEdgeOptions={defaultEdgeOptions}
        onNodesChange={store.getState().onNodesChange}
        onEdgesChange={store.getState().onEdgesChange}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        connectionMode={ConnectionMode.Strict}
        onDrop={onDrop}
        onDragOver={onDragOver}
        deleteKeyCode={null}
        multiSelectionKeyCode={['Meta', 'Control', 'Shift']}
        selectionKeyCode="Shift"
        snapToGrid
        snapGrid={SNAP}
        minZoom={0.1}
        maxZoom={2.5}
        colorMode={theme}
        proOptions={{ hideAttribution: true }}
      >
        <Background variant={BackgroundVariant.Dots} gap={20} size={1.2} />
        <MiniMap pannable zoomable nodeColor={miniMapColor} nodeStrokeWidth={2} style={MINIMAP_STYLE} />
        <Controls showInteractive={false} />
      </ReactFlow>
      <ConnectError />
      <ViewingBanner />
    </div>
  );
}
