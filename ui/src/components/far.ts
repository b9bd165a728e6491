// The canvas's far zoom: below FAR_ZOOM node text is a few pixels high, so nodes are drawn as
// plain boxes in their state's colour (`.canvas-wrap.far` in styles.css) and neither nodes nor
// edges re-render for counters nobody can read. That keeps panning a large flow, and running it,
// smooth.
import { useStore, type ReactFlowState } from '@xyflow/react';

export const FAR_ZOOM = 0.3;

const farSelector = (s: ReactFlowState) => s.transform[2] < FAR_ZOOM;

/** True while the canvas is zoomed out below FAR_ZOOM. */
export function useFar(): boolean {
  return useStore(farSelector);
}
