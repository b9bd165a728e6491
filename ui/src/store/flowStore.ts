// One store per open flow: the document, selection, undo/redo, validation and the live
// execution. Every action is synchronous and built from the pure functions in ../model; talking
// to the engine is the controller's job.
import { applyEdgeChanges, applyNodeChanges, type EdgeChange, type NodeChange } from '@xyflow/react';
import { createStore, type StoreApi } from 'zustand/vanilla';
import type {
  EngineEvent,
  ExecutionDetail,
  ExecutionSummary,
  Flow,
  NodeDescriptor,
  NodeSettings,
  Problem,
  Suggestion,
} from '../api/types';
import { copySelection, pasteClipboard, type Clipboard } from '../model/clipboard';
import { connectionProblem, type ConnectionAttempt } from '../model/connections';
import {
  canvasEdge,
  catalogByType,
  createNode,
  emptyDoc,
  fromFlow,
  toFlow,
  type CanvasEdge,
  type CanvasNode,
  type Catalog,
  type FlowMeta,
} from '../model/document';
import { emptyHistory, record, redo as redoStep, undo as undoStep, type History } from '../model/history';
import {
  applyEvents,
  fromDetail,
  isTerminalExecution,
  mergeDetail,
  startedExecution,
  type LiveExecution,
} from '../model/execution';
import { layoutNodes, withEstimatedHandles, withoutEstimates } from '../model/layout';
import { pathToSegments, setIn } from '../model/paths';
import { applySuggestion as applySuggestionToDoc } from '../model/suggestions';
import { applyCheck, applyReport, emptyValidation, type ValidationState } from '../model/validation';

export type NoticeKind = 'error' | 'info' | 'success';

export interface Notice {
  id: number;
  kind: NoticeKind;
  message: string;
  /** Set on the notice of an alert that fired or resolved (the Monitoring panel's rules). */
  topic?: 'alert';
}

/** Events kept while a start is in flight (their execution id is not known yet). */
const EVENT_BUFFER_LIMIT = 20_000;
const PASTE_OFFSET = 40;

export interface FlowData {
  catalog: NodeDescriptor[];
  catalogByType: Catalog;
  meta: FlowMeta;
  nodes: CanvasNode[];
  edges: CanvasEdge[];
  /** Where the flow is saved; null for a new flow or an example. */
  filePath: string | null;
  /**
   * The file the flow was read from or last saved to, an example's too: the engine resolves the
   * flow's sub-flow paths against it. Null for a new flow.
   */
  sourcePath: string | null;
  /** Bumped when another flow is opened (file, example, new): answers about the last one are stale. */
  docId: number;
  dirty: boolean;
  /** Bumped on every change to what would be saved. */
  revision: number;
  /** Bumped on every change that can change validation. */
  version: number;
  /** Bumped when the view should fit the flow (after load and layout). */
  fitRequest: number;
  history: History;
  dragging: boolean;
  clipboard: Clipboard | null;
  pasteCount: number;
  validation: ValidationState;
  /** The execution started from this editor. */
  live: LiveExecution | null;
  starting: boolean;
  eventBuffer: EngineEvent[];
  /** A past execution shown on the canvas instead of the live one. */
  viewed: LiveExecution | null;
  executions: ExecutionSummary[];
  connectError: { message: string; at: number } | null;
  notices: Notice[];
  nextNoticeId: number;
}

export interface FlowActions {
  setCatalog(descriptors: NodeDescriptor[]): void;
  /** Opens `flow`, saved at `path`; `sourcePath` is where it was read from when not saved there (an example). */
  loadFlow(flow: Flow, path: string | null, sourcePath?: string | null): void;
  newFlow(name?: string): void;
  toFlow(): Flow;
  onNodesChange(changes: NodeChange<CanvasNode>[]): void;
  onEdgesChange(changes: EdgeChange<CanvasEdge>[]): void;
  /** Why the connection would be refused, or null (no state change). */
  checkConnection(c: ConnectionAttempt): string | null;
  /** Adds the edge, or shows why not; returns the refusal. */
  connect(c: ConnectionAttempt): string | null;
  showConnectError(message: string): void;
  clearConnectError(): void;
  addNode(type: string, position: { x: number; y: number }): string | null;
  setParams(id: string, params: Record<string, unknown>, key?: string): void;
  setParam(id: string, path: string, value: unknown): void;
  renameNode(id: string, name: string): void;
  setSettings(id: string, settings: NodeSettings | undefined): void;
  setMeta(meta: Partial<Pick<FlowMeta, 'name' | 'description'>>): void;
  setVariables(variables: Record<string, unknown>): void;
  select(ids: string[]): void;
  selectAll(): void;
  deleteSelection(): void;
  copy(): boolean;
  paste(): string[];
  undo(): void;
  redo(): void;
  autoLayout(): void;
  /** Fits the whole flow into the view (the canvas does it). */
  requestFit(): void;
  applySuggestion(s: Suggestion): boolean;
  applyValidation(problems: Problem[], version: number): void;
  /** A pre-run check of flow `docId`, with live validation's problems on the same flow. */
  applyCheck(check: Problem[], live: Problem[], docId: number): void;
  validationFailed(message: string): void;
  beginRun(): void;
  runStarted(id: string): void;
  runFailed(): void;
  applyEventBatch(events: EngineEvent[]): void;
  mergeLiveDetail(detail: ExecutionDetail): void;
  viewExecution(detail: ExecutionDetail | null): void;
  setExecutions(list: ExecutionSummary[]): void;
  notify(kind: NoticeKind, message: string, topic?: Notice['topic']): number;
  dismiss(id: number): void;
  /** The document at `revision` was saved to `path`. */
  markSaved(path: string, revision: number): void;
}

export type FlowState = FlowData & FlowActions;
export type FlowStore = StoreApi<FlowState>;

function initialData(catalog: NodeDescriptor[] = []): FlowData {
  const doc = emptyDoc();
  return {
    catalog,
    catalogByType: catalogByType(catalog),
    meta: doc.meta,
    nodes: doc.nodes,
    edges: doc.edges,
    filePath: null,
    sourcePath: null,
    docId: 0,
    dirty: false,
    revision: 0,
    version: 0,
    fitRequest: 0,
    history: emptyHistory(),
    dragging: false,
    clipboard: null,
    pasteCount: 0,
    validation: emptyValidation(),
    live: null,
    starting: false,
    eventBuffer: [],
    viewed: null,
    executions: [],
    connectError: null,
    notices: [],
    nextNoticeId: 1,
  };
}

export function isRunActive(s: Pick<FlowData, 'live' | 'starting'>): boolean {
  return s.starting || (s.live !== null && !isTerminalExecution(s.live.state));
}

function nodeIds(s: Pick<FlowData, 'nodes'>): Set<string> {
  return new Set(s.nodes.map((n) => n.id));
}

export function selectedNodes(s: Pick<FlowData, 'nodes'>): CanvasNode[] {
  return s.nodes.filter((n) => n.selected);
}

/** Measured nodes drop their estimated handles (React Flow would prefer them to the measured ones). */
function settleMeasured(nodes: CanvasNode[]): CanvasNode[] {
  let out: CanvasNode[] | null = null;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (n.handles && n.measured) {
      out ??= nodes.slice();
      out[i] = withoutEstimates(n);
    }
  }
  return out ?? nodes;
}

/**
 * Restored (undo/redo) nodes that were not measured yet when they were recorded take the size
 * React Flow has measured since, so their estimated handles do not come back.
 */
function keepMeasured(restored: CanvasNode[], current: CanvasNode[]): CanvasNode[] {
  if (!restored.some((n) => n.handles)) return restored;
  const byId = new Map(current.map((n) => [n.id, n]));
  return restored.map((n) => {
    const measured = n.handles ? byId.get(n.id)?.measured : undefined;
    return measured ? withoutEstimates({ ...n, measured }) : n;
  });
}

export function createFlowStore(catalog: NodeDescriptor[] = []): FlowStore {
  return createStore<FlowState>()((set, get) => {
    /** Applies a document change as one undo step. */
    const change = (
      patch: Partial<Pick<FlowData, 'nodes' | 'edges'>>,
      opts: { key?: string; semantic?: boolean } = {},
    ) => {
      const s = get();
      set({
        ...patch,
        history: record(s.history, { nodes: s.nodes, edges: s.edges }, { key: opts.key }),
        dirty: true,
        revision: s.revision + 1,
        version: opts.semantic === false ? s.version : s.version + 1,
      });
    };

    const updateNode = (id: string, fn: (n: CanvasNode) => CanvasNode, key?: string) => {
      const s = get();
      const i = s.nodes.findIndex((n) => n.id === id);
      if (i < 0) return;
      const nodes = s.nodes.slice();
      nodes[i] = fn(nodes[i]);
      change({ nodes }, { key });
    };

    const resetDoc = (flow: Flow | null, path: string | null, sourcePath: string | null, name?: string) => {
      const s = get();
      let meta: FlowMeta;
      let nodes: CanvasNode[];
      let edges: CanvasEdge[];
      if (flow) {
        const { doc, needsLayout } = fromFlow(flow);
        meta = doc.meta;
        nodes = (needsLayout ? layoutNodes(doc.nodes, doc.edges) : doc.nodes).map((n) =>
          withEstimatedHandles(n, s.catalogByType[n.data.type]),
        );
        edges = doc.edges;
      } else {
        ({ meta, nodes, edges } = emptyDoc(name));
      }
      set({
        meta,
        nodes,
        edges,
        filePath: path,
        sourcePath,
        docId: s.docId + 1,
        dirty: false,
        revision: s.revision + 1,
        version: s.version + 1,
        fitRequest: s.fitRequest + 1,
        history: emptyHistory(),
        dragging: false,
        pasteCount: 0,
        validation: emptyValidation(),
        // A run of the previous flow keeps going in the engine; this editor stops showing it.
        live: null,
        starting: false,
        eventBuffer: [],
        viewed: null,
        connectError: null,
      });
    };

    return {
      ...initialData(catalog),

      setCatalog(descriptors) {
        set({ catalog: descriptors, catalogByType: catalogByType(descriptors), version: get().version + 1 });
      },

      loadFlow(flow, path, sourcePath = path) {
        resetDoc(flow, path, sourcePath);
      },

      newFlow(name) {
        resetDoc(null, null, null, name);
      },

      toFlow() {
        const s = get();
        return toFlow({ meta: s.meta, nodes: s.nodes, edges: s.edges });
      },

      onNodesChange(changes) {
        const s = get();
        let history = s.history;
        let dragging = s.dragging;
        let dirty = s.dirty;
        let version = s.version;
        const positions = changes.filter((c) => c.type === 'position');
        if (positions.length > 0) {
          if (positions.some((c) => c.dragging)) {
            if (!dragging) history = record(history, { nodes: s.nodes, edges: s.edges }, { key: 'drag' });
            dragging = true;
          } else if (dragging) {
            dragging = false;
          } else {
            history = record(history, { nodes: s.nodes, edges: s.edges }, { key: 'move' });
          }
          dirty = true;
        }
        const removes = changes.filter((c) => c.type === 'remove');
        let edges = s.edges;
        if (removes.length > 0) {
          history = record(history, { nodes: s.nodes, edges: s.edges });
          const gone = new Set(removes.map((c) => c.id));
          edges = edges.filter((e) => !gone.has(e.source) && !gone.has(e.target));
          dirty = true;
          version += 1;
        }
        if (changes.some((c) => c.type === 'add' || c.type === 'replace')) {
          dirty = true;
          version += 1;
        }
        const revision = dirty !== s.dirty || version !== s.version || positions.length > 0 ? s.revision + 1 : s.revision;
        let nodes = applyNodeChanges(changes, s.nodes);
        if (changes.some((c) => c.type === 'dimensions')) nodes = settleMeasured(nodes);
        set({ nodes, edges, history, dragging, dirty, version, revision });
      },

      onEdgesChange(changes) {
        const s = get();
        const structural = changes.some((c) => c.type === 'remove' || c.type === 'add' || c.type === 'replace');
        if (structural) {
          change({ edges: applyEdgeChanges(changes, s.edges) });
        } else {
          set({ edges: applyEdgeChanges(changes, s.edges) });
        }
      },

      checkConnection(c) {
        const s = get();
        return connectionProblem(s.nodes, s.edges, s.catalogByType, c);
      },

      connect(c) {
        const s = get();
        const problem = connectionProblem(s.nodes, s.edges, s.catalogByType, c);
        if (problem) {
          get().showConnectError(problem);
          return problem;
        }
        const edge = canvasEdge(
          { node: c.source as string, port: c.sourceHandle as string },
          { node: c.target as string, port: c.targetHandle as string },
        );
        change({ edges: [...s.edges, edge] });
        set({ connectError: null });
        return null;
      },

      showConnectError(message) {
        set({ connectError: { message, at: Date.now() } });
      },

      clearConnectError() {
        if (get().connectError) set({ connectError: null });
      },

      addNode(type, position) {
        const s = get();
        const desc = s.catalogByType[type];
        if (!desc) return null;
        const node = createNode(desc, position, new Set(s.nodes.map((n) => n.id)));
        const nodes = s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n));
        nodes.push({ ...node, selected: true });
        change({ nodes, edges: s.edges.map((e) => (e.selected ? { ...e, selected: false } : e)) });
        return node.id;
      },

      setParams(id, params, key) {
        updateNode(id, (n) => ({ ...n, data: { ...n.data, params } }), key ?? `params:${id}`);
      },

      setParam(id, path, value) {
        const node = get().nodes.find((n) => n.id === id);
        if (!node) return;
        const params = setIn(node.data.params, pathToSegments(path), value) as Record<string, unknown>;
        get().setParams(id, params, `param:${id}:${path}`);
      },

      renameNode(id, name) {
        updateNode(id, (n) => ({ ...n, data: { ...n.data, name } }), `name:${id}`);
      },

      setSettings(id, settings) {
        updateNode(
          id,
          (n) => {
            const data = { ...n.data };
            if (settings) data.settings = settings;
            else delete data.settings;
            return { ...n, data };
          },
          `settings:${id}`,
        );
      },

      setMeta(meta) {
        const s = get();
        set({ meta: { ...s.meta, ...meta }, dirty: true, revision: s.revision + 1, version: s.version + 1 });
      },

      setVariables(variables) {
        const s = get();
        set({ meta: { ...s.meta, variables }, dirty: true, revision: s.revision + 1, version: s.version + 1 });
      },

      select(ids) {
        const want = new Set(ids);
        const s = get();
        set({
          nodes: s.nodes.map((n) => (!!n.selected === want.has(n.id) ? n : { ...n, selected: want.has(n.id) })),
          edges: s.edges.map((e) => (e.selected ? { ...e, selected: false } : e)),
        });
      },

      selectAll() {
        const s = get();
        set({ nodes: s.nodes.map((n) => (n.selected ? n : { ...n, selected: true })) });
      },

      deleteSelection() {
        const s = get();
        const gone = new Set(s.nodes.filter((n) => n.selected).map((n) => n.id));
        const edges = s.edges.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target));
        if (gone.size === 0 && edges.length === s.edges.length) return;
        change({ nodes: s.nodes.filter((n) => !gone.has(n.id)), edges });
      },

      copy() {
        const s = get();
        const clip = copySelection(s.nodes, s.edges);
        if (!clip) return false;
        set({ clipboard: clip, pasteCount: 0 });
        return true;
      },

      paste() {
        const s = get();
        if (!s.clipboard) return [];
        const k = s.pasteCount + 1;
        const pasted = pasteClipboard(s.clipboard, new Set(s.nodes.map((n) => n.id)), {
          x: PASTE_OFFSET * k,
          y: PASTE_OFFSET * k,
        });
        const nodes = s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)).concat(pasted.nodes);
        const edges = s.edges.map((e) => (e.selected ? { ...e, selected: false } : e)).concat(pasted.edges);
        change({ nodes, edges });
        set({ pasteCount: k });
        return pasted.nodes.map((n) => n.id);
      },

      undo() {
        const s = get();
        const step = undoStep(s.history, { nodes: s.nodes, edges: s.edges });
        if (!step) return;
        set({ ...step.restore, nodes: keepMeasured(step.restore.nodes, s.nodes), history: step.history, dirty: true, revision: s.revision + 1, version: s.version + 1, dragging: false });
      },

      redo() {
        const s = get();
        const step = redoStep(s.history, { nodes: s.nodes, edges: s.edges });
        if (!step) return;
        set({ ...step.restore, nodes: keepMeasured(step.restore.nodes, s.nodes), history: step.history, dirty: true, revision: s.revision + 1, version: s.version + 1, dragging: false });
      },

      autoLayout() {
        const s = get();
        if (s.nodes.length === 0) return;
        change({ nodes: layoutNodes(s.nodes, s.edges) }, { semantic: false });
        get().requestFit();
      },

      requestFit() {
        set({ fitRequest: get().fitRequest + 1 });
      },

      applySuggestion(sug) {
        const s = get();
        const result = applySuggestionToDoc({ meta: s.meta, nodes: s.nodes, edges: s.edges }, sug, s.catalogByType);
        if (!result) return false;
        let nodes = result.doc.nodes;
        if (result.select) {
          const pick = result.select;
          nodes = nodes.map((n) => (!!n.selected === (n.id === pick) ? n : { ...n, selected: n.id === pick }));
        }
        change({ nodes, edges: result.doc.edges });
        return true;
      },

      applyValidation(problems, version) {
        const s = get();
        if (version !== s.version) return; // a newer validation is on its way
        set({ validation: applyReport(s.validation, problems, version, nodeIds(s)) });
      },

      applyCheck(check, live, docId) {
        const s = get();
        if (docId !== s.docId) return;
        set({ validation: applyCheck(s.validation, check, live, nodeIds(s)) });
      },

      validationFailed(message) {
        set({ validation: { ...get().validation, error: message } });
      },

      beginRun() {
        set({ starting: true, eventBuffer: [], viewed: null });
      },

      runStarted(id) {
        const s = get();
        let live = startedExecution(id, s.meta.name, s.nodes.map((n) => n.id));
        const mine = s.eventBuffer.filter((e) => e.execution_id === id);
        if (mine.length > 0) live = applyEvents(live, mine);
        set({ live, starting: false, eventBuffer: [] });
      },

      runFailed() {
        set({ starting: false, eventBuffer: [] });
      },

      applyEventBatch(events) {
        const s = get();
        if (s.starting) {
          const buffer = s.eventBuffer.concat(events);
          set({ eventBuffer: buffer.length > EVENT_BUFFER_LIMIT ? buffer.slice(-EVENT_BUFFER_LIMIT) : buffer });
          return;
        }
        if (!s.live) return;
        const live = applyEvents(s.live, events);
        if (live !== s.live) set({ live });
      },

      mergeLiveDetail(detail) {
        const s = get();
        if (s.live && s.live.id === detail.id) set({ live: mergeDetail(s.live, detail) });
      },

      viewExecution(detail) {
        set({ viewed: detail ? fromDetail(detail) : null });
      },

      setExecutions(list) {
        set({ executions: list });
      },

      notify(kind, message, topic) {
        const s = get();
        const id = s.nextNoticeId;
        set({ notices: [...s.notices.slice(-4), { id, kind, message, topic }], nextNoticeId: id + 1 });
        return id;
      },

      dismiss(id) {
        set({ notices: get().notices.filter((n) => n.id !== id) });
      },

      markSaved(path, revision) {
        const saved = { filePath: path, sourcePath: path };
        set(get().revision === revision ? { ...saved, dirty: false } : saved);
      },
    };
  });
}
