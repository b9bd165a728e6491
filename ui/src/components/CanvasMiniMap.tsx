// The minimap: every node as a rectangle on one <canvas>, the view as a window in a mask. React
// Flow's own MiniMap renders one SVG component per node and repaints them all on every frame of
// a pan, which costs more than the canvas itself on large flows; this one draws at most once per
// animation frame, outside React. Click or drag to move the view there; the wheel zooms.
import { Panel, useReactFlow, useStoreApi } from '@xyflow/react';
import { useEffect, useRef, type PointerEvent, type WheelEvent } from 'react';
import type { CanvasEdge, CanvasNode } from '../model/document';
import { DEFAULT_NODE_HEIGHT, DEFAULT_NODE_WIDTH } from '../model/layout';
import { useApp, useController } from '../store/context';

const WIDTH = 160;
const HEIGHT = 110;
/** Margin around the flow, in minimap pixels. */
const MARGIN = 5;

/** Flow coordinates of the minimap's top-left corner and flow units per minimap pixel. */
interface Mapping {
  x: number;
  y: number;
  unit: number;
}

export function CanvasMiniMap() {
  const store = useController().store;
  const rfStore = useStoreApi<CanvasNode, CanvasEdge>();
  const { setCenter, zoomTo } = useReactFlow<CanvasNode, CanvasEdge>();
  const theme = useApp((s) => s.settings.theme);
  const canvas = useRef<HTMLCanvasElement>(null);
  const mapping = useRef<Mapping>({ x: 0, y: 0, unit: 1 });
  const dragging = useRef(false);

  useEffect(() => {
    const el = canvas.current;
    const ctx = el?.getContext('2d');
    if (!el || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    el.width = WIDTH * dpr;
    el.height = HEIGHT * dpr;

    const draw = () => {
      const { transform, width, height } = rfStore.getState();
      const [tx, ty, zoom] = transform;
      const nodes = store.getState().nodes;
      const view = { x: -tx / zoom, y: -ty / zoom, w: width / zoom, h: height / zoom };
      let x0 = view.x;
      let y0 = view.y;
      let x1 = view.x + view.w;
      let y1 = view.y + view.h;
      for (const n of nodes) {
        x0 = Math.min(x0, n.position.x);
        y0 = Math.min(y0, n.position.y);
        x1 = Math.max(x1, n.position.x + (n.measured?.width ?? n.initialWidth ?? DEFAULT_NODE_WIDTH));
        y1 = Math.max(y1, n.position.y + (n.measured?.height ?? n.initialHeight ?? DEFAULT_NODE_HEIGHT));
      }
      // One scale for both axes, the flow centred, a margin around it.
      const unit = Math.max((x1 - x0) / (WIDTH - 2 * MARGIN), (y1 - y0) / (HEIGHT - 2 * MARGIN), 1e-6);
      const m = { x: (x0 + x1) / 2 - (WIDTH / 2) * unit, y: (y0 + y1) / 2 - (HEIGHT / 2) * unit, unit };
      mapping.current = m;
      const css = getComputedStyle(el);
      const color = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, WIDTH, HEIGHT);
      const plain = color('--minimap-node', '#8890a0');
      const selected = color('--accent', '#5b8cff');
      ctx.fillStyle = plain;
      for (const n of nodes) {
        if (n.selected) continue;
        const w = n.measured?.width ?? n.initialWidth ?? DEFAULT_NODE_WIDTH;
        const h = n.measured?.height ?? n.initialHeight ?? DEFAULT_NODE_HEIGHT;
        ctx.fillRect((n.position.x - m.x) / unit, (n.position.y - m.y) / unit, Math.max(w / unit, 1), Math.max(h / unit, 1));
      }
      ctx.fillStyle = selected;
      for (const n of nodes) {
        if (!n.selected) continue;
        const w = n.measured?.width ?? n.initialWidth ?? DEFAULT_NODE_WIDTH;
        const h = n.measured?.height ?? n.initialHeight ?? DEFAULT_NODE_HEIGHT;
        ctx.fillRect((n.position.x - m.x) / unit, (n.position.y - m.y) / unit, Math.max(w / unit, 1), Math.max(h / unit, 1));
      }
      // The mask outside the view.
      const vx = (view.x - m.x) / unit;
      const vy = (view.y - m.y) / unit;
      ctx.beginPath();
      ctx.rect(0, 0, WIDTH, HEIGHT);
      ctx.rect(vx, vy, view.w / unit, view.h / unit);
      ctx.fillStyle = color('--xy-minimap-mask-background-color', color('--xy-minimap-mask-background-color-default', 'rgba(240, 240, 240, 0.6)'));
      ctx.fill('evenodd');
      ctx.strokeStyle = color('--xy-minimap-mask-stroke-color-default', 'transparent');
      ctx.lineWidth = 1;
      ctx.strokeRect(vx, vy, view.w / unit, view.h / unit);
    };

    let frame = 0;
    const schedule = () => {
      if (frame === 0) frame = requestAnimationFrame(() => ((frame = 0), draw()));
    };
    draw();
    const offView = rfStore.subscribe((s, prev) => {
      if (s.transform !== prev.transform || s.width !== prev.width || s.height !== prev.height) schedule();
    });
    const offNodes = store.subscribe((s, prev) => {
      if (s.nodes !== prev.nodes) schedule();
    });
    return () => {
      offView();
      offNodes();
      if (frame !== 0) cancelAnimationFrame(frame);
    };
  }, [store, rfStore, theme]);

  const centreAt = (e: PointerEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const m = mapping.current;
    const zoom = rfStore.getState().transform[2];
    void setCenter(m.x + (e.clientX - r.left) * m.unit, m.y + (e.clientY - r.top) * m.unit, { zoom });
  };

  const onWheel = (e: WheelEvent<HTMLCanvasElement>) => {
    const zoom = rfStore.getState().transform[2];
    void zoomTo(zoom * Math.pow(2, -e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.002)));
  };

  return (
    <Panel position="bottom-right" className="react-flow__minimap canvas-minimap" data-testid="minimap">
      <canvas
        ref={canvas}
        style={{ width: WIDTH, height: HEIGHT, display: 'block' }}
        className="nodrag nopan nowheel"
        onPointerDown={(e) => {
          dragging.current = true;
          centreAt(e);
          try {
            e.currentTarget.setPointerCapture(e.pointerId);
          } catch {
            // Not an active pointer (a synthetic event): the drag ends with the element.
          }
        }}
        onPointerMove={(e) => {
          if (dragging.current) centreAt(e);
        }}
        onPointerUp={() => {
          // Capture ends with the button.
          dragging.current = false;
        }}
        onPointerCancel={() => {
          dragging.current = false;
        }}
        onWheel={onWheel}
      />
    </Panel>
  );
}
