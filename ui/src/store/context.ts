import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { AppData, Controller } from './controller';
import type { FlowState } from './flowStore';

export const ControllerContext = createContext<Controller | null>(null);

export function useController(): Controller {
  const c = useContext(ControllerContext);
  if (!c) throw new Error('useController outside ControllerContext');
  return c;
}

/** A slice of the open flow's store; re-renders only when the slice changes. */
export function useFlow<T>(selector: (s: FlowState) => T): T {
  return useStore(useController().store, selector);
}

export function useApp<T>(selector: (s: AppData) => T): T {
  return useStore(useController().app, selector);
}
