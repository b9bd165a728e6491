// One-click fixes the engine suggests for a problem: edits of the document, or the Connections
// dialog opened on the connection concerned.
import type { Suggestion } from '../api/types';
import { newConnection, type ConnectionFocus } from './connections';
import { canvasEdge, type Catalog, type CanvasNode, type Doc } from './document';
import { uniqueId } from './ids';
import { pointerToSegments, setIn } from './paths';

export const FIELD_MAPPER = 'field_mapper';

export function describeSuggestion(s: Suggestion): string {
  switch (s.kind) {
    case 'replace_field':
      return `Use field “${s.to}” instead of “${s.from}”`;
    case 'insert_field_mapper':
      return `Insert a Field Mapper renaming “${s.rename_from}” to “${s.rename_to}”`;
    case 'create_connection':
      return `Create connection \`${s.name}\`…`;
    case 'edit_connection':
      return `Edit connection \`${s.name}\`…`;
  }
}

/** Where the Connections dialog should open for the suggestion; null when it edits the document. */
export function connectionFocus(s: Suggestion): ConnectionFocus | null {
  switch (s.kind) {
    case 'create_connection':
      return { kind: 'create', connection: newConnection(s.name, s.connection_kind) };
    case 'edit_connection':
      return { kind: 'edit', name: s.name };
    default:
      return null;
  }
}

/** The document with the suggestion applied, or null when it no longer applies. */
export function applySuggestion(doc: Doc, s: Suggestion, catalog: Catalog): { doc: Doc; select?: string } | null {
  switch (s.kind) {
    case 'replace_field': {
      const node = doc.nodes.find((n) => n.id === s.node);
      if (!node) return null;
      const params = setIn(node.data.params, pointerToSegments(s.param), s.to) as Record<string, unknown>;
      const updated: CanvasNode = { ...node, data: { ...node.data, params } };
      return { doc: { ...doc, nodes: doc.nodes.map((n) => (n === node ? updated : n)) } };
    }
    case 'insert_field_mapper': {
      const edge = doc.edges.find(
        (e) =>
          e.source === s.from.node &&
          (e.sourceHandle ?? 'out') === s.from.port &&
          e.target === s.to.node &&
          (e.targetHandle ?? 'in') === s.to.port,
      );
      if (!edge) return null;
      const a = doc.nodes.find((n) => n.id === s.from.node);
      const b = doc.nodes.find((n) => n.id === s.to.node);
      if (!a || !b) return null;
      const desc = catalog[FIELD_MAPPER];
      const inPort = desc?.inputs[0]?.name ?? 'in';
      const outPort = desc?.outputs[0]?.name ?? 'out';
      const id = uniqueId(FIELD_MAPPER, new Set(doc.nodes.map((n) => n.id)));
      const mapper: CanvasNode = {
        id,
        type: 'flow',
        position: {
          x: Math.round((a.position.x + b.position.x) / 2),
          y: Math.round((a.position.y + b.position.y) / 2) + 60,
        },
        data: {
          type: FIELD_MAPPER,
          name: `${s.rename_from} → ${s.rename_to}`,
          params: { operations: [{ op: 'rename', from: s.rename_from, to: s.rename_to }] },
        },
      };
      const edges = doc.edges.filter((e) => e !== edge);
      edges.push(canvasEdge(s.from, { node: id, port: inPort }), canvasEdge({ node: id, port: outPort }, s.to));
      return { doc: { ...doc, nodes: [...doc.nodes, mapper], edges }, select: id };
    }
    case 'create_connection':
    case 'edit_connection':
      // Not document edits: see connectionFocus.
      return null;
  }
}
