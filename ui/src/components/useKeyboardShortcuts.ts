import { useEffect } from 'react';
import { useController } from '../store/context';

function isEditable(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  const tag = target.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || target.isContentEditable;
}

/** Editor shortcuts: undo/redo, copy/paste, delete, select all, save; Escape closes the monitoring panel. */
export function useKeyboardShortcuts(): void {
  const controller = useController();
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === 's') {
        e.preventDefault();
        void (e.shiftKey ? controller.saveAs() : controller.save());
        return;
      }
      if (isEditable(e.target) || document.querySelector('.modal-backdrop')) return;
      // The monitoring panel covers the canvas: no edit that would not be seen; Escape goes back.
      if (controller.app.getState().monitoring.open) {
        if (e.key === 'Escape') controller.closeMonitoring();
        return;
      }
      const s = controller.store.getState();
      if (mod && key === 'z') {
        e.preventDefault();
        if (e.shiftKey) s.redo();
        else s.undo();
      } else if (mod && key === 'y') {
        e.preventDefault();
        s.redo();
      } else if (mod && key === 'c') {
        if (s.copy()) e.preventDefault();
      } else if (mod && key === 'v') {
        e.preventDefault();
        s.paste();
      } else if (mod && key === 'a') {
        e.preventDefault();
        s.selectAll();
      } else if (!mod && (e.key === 'Delete' || e.key === 'Backspace')) {
        e.preventDefault();
        s.deleteSelection();
      } else if (e.key === 'Escape') {
        s.select([]);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [controller]);
}
