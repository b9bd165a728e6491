import {
  Background,
  BackgroundVariant,
  ConnectionMode,
  Controls,
  MarkerType,
  ReactFlow,
  getViewportForBounds,
  useReactFlow,
  useStoreApi,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type InternalNode,
} from '@xyflow/react';
import { useCallback, useEffect, useLayoutEffect, useRef, type DragEvent } from 'react';
import type { CanvasEdge, CanvasNode } from '../model/document';
import { DEFAULT_NODE_HEIGHT, DEFAULT_NODE_WIDTH } from '../model/layout';
import { useFar } from './far';
import { useApp, useController, useFlow } from '../store/context';
import { CanvasMiniMap } from './CanvasMiniMap';
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
const PRO_OPTIONS = { hideAttribution: true };
const MIN_ZOOM = 0.1;
/**
 * A flow opens fitted to the view, but never below the zoom where its nodes can still be read:
 * a large one opens on its middle (Fit view shows all of it). Fitting 1,000 nodes at 10 % also
 * rendered nearly all of them before the first useful paint: 1.4 s on a slow machine.
 */
const OPEN_MIN_ZOOM = 0.5;

declare global {
  interface Window {
    /** React Flow's instance, for the desktop benchmarks (only with `window.__FLOW_TEST__`). */
    __flowReactFlow?: unknown;
  }
}

/** The flow-space box around `nodes`, with their measured size or an estimate. */
function nodesBounds(nodes: readonly CanvasNode[]) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const n of nodes) {
    const w = n.measured?.width ?? n.initialWidth ?? DEFAULT_NODE_WIDTH;
    const h = n.measured?.height ?? n.initialHeight ?? DEFAULT_NODE_HEIGHT;
    x0 = Math.min(x0, n.position.x);
    y0 = Math.min(y0, n.position.y);
    x1 = Math.max(x1, n.position.x + w);
    y1 = Math.max(y1, n.position.y + h);
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** The viewport that fits `nodes` into a `width` x `height` view, zoomed `minZoom` or more. */
function fittingViewport(nodes: readonly CanvasNode[], width: number, height: number, minZoom: number) {
  return getViewportForBounds(nodesBounds(nodes), width, height, minZoom, FIT.maxZoom, FIT.padding);
}

export function Canvas() {
  const controller = useController();
  const store = controller.store;
  const nodes = useFlow((s) => s.nodes);
  const edges = useFlow((s) => s.edges);
  const fitRequest = useFlow((s) => s.fitRequest);
  const docId = useFlow((s) => s.docId);
  const theme = useApp((s) => s.settings.theme);
  const far = useFar();
  const rf = useReactFlow<CanvasNode, CanvasEdge>();
  const rfStore = useStoreApi<CanvasNode, CanvasEdge>();
  const { screenToFlowPosition, setViewport } = rf;
  /** The last flow fitted at once, and the last fit request done that way. */
  const fittedDoc = useRef(0);
  const fittedRequest = useRef(0);

  useEffect(() => {
    if (window.__FLOW_TEST__) window.__flowReactFlow = rf;
  }, [rf]);

  useLayoutEffect(() => {
    if (fitRequest === 0 || fittedDoc.current === docId) return;
    // A flow just opened: fit it at once from the nodes' positions and estimated sizes, before
    // the first paint, so only the nodes in that view are rendered (a readable part of a large
    // flow, never all of it).
    const nodes = store.getState().nodes;
    const { width, height } = rfStore.getState();
    // Not measured yet: the fit after measuring (below) does it.
    if (!width || !height) return;
    fittedDoc.current = docId;
    fittedRequest.current = fitRequest;
    if (nodes.length === 0) return;
    void setViewport(fittingViewport(nodes, width, height, OPEN_MIN_ZOOM));
  }, [fitRequest, docId, store, rfStore, setViewport]);

  useEffect(() => {
    if (fitRequest === 0 || fittedRequest.current === fitRequest) return;
    // Fit view, auto-layout (or the canvas had no size yet): fit the whole flow. From the nodes'
    // positions and sizes (estimated where not measured) rather than React Flow's fitView, which
    // fits only the nodes it has measured, those in view.
    const t = setTimeout(() => {
      fittedRequest.current = fitRequest;
      const nodes = store.getState().nodes;
      const { width, height } = rfStore.getState();
      if (nodes.length === 0 || !width || !height) return;
      void setViewport(fittingViewport(nodes, width, height, MIN_ZOOM), { duration: 200 });
    }, 60);
    return () => clearTimeout(t);
  }, [fitRequest, store, rfStore, setViewport]);

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
    <div className={far ? 'canvas-wrap far' : 'canvas-wrap'}>
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
        onlyRenderVisibleElements
        minZoom={MIN_ZOOM}
        maxZoom={2.5}
        colorMode={theme}
        proOptions={PRO_OPTIONS}
      >
        <Background variant={BackgroundVariant.Dots} gap={20} size={1.2} />
        <CanvasMiniMap />
        <Controls showInteractive={false} />
      </ReactFlow>
      <ConnectError />
      <ViewingBanner />
    </div>
  );
}
