import { ReactFlowProvider } from '@xyflow/react';
import { useEffect, useLayoutEffect } from 'react';
import { Canvas } from './components/Canvas';
import { ConnectionsDialog } from './components/ConnectionsDialog';
import { SecretsDialog } from './components/SecretsDialog';
import { HistoryPanel } from './components/HistoryPanel';
import { Inspector } from './components/Inspector';
import { MonitoringPanel } from './components/MonitoringPanel';
import { Notices } from './components/Notices';
import { Palette } from './components/Palette';
import { PreviewPanel } from './components/PreviewPanel';
import { ProblemsList } from './components/ProblemsList';
import { Toolbar } from './components/Toolbar';
import { VariablesDialog } from './components/VariablesDialog';
import { useKeyboardShortcuts } from './components/useKeyboardShortcuts';
import type { Controller } from './store/controller';
import { ControllerContext, useApp, useController, useFlow } from './store/context';

function Shell() {
  const controller = useController();
  const dialog = useApp((s) => s.dialog);
  const theme = useApp((s) => s.settings.theme);
  const name = useFlow((s) => s.meta.name);
  const dirty = useFlow((s) => s.dirty);
  const monitoring = useApp((s) => s.monitoring.open);
  useKeyboardShortcuts();

  // Before any child's effect runs: the charts read the theme's colours in theirs.
  useLayoutEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  useEffect(() => {
    document.title = `${dirty ? '• ' : ''}${name} — Flow Platform`;
  }, [name, dirty]);
  useEffect(() => {
    const onFocus = () => controller.windowFocused();
    window.addEventListener('focus', onFocus);
    return () => window.removeEventListener('focus', onFocus);
  }, [controller]);

  return (
    <div className="app">
      <Toolbar />
      <div className="workspace">
        <Palette />
        <div className="main-column">
          <Canvas />
          <div className="bottom-dock">
            <ProblemsList />
            <HistoryPanel />
            <PreviewPanel />
          </div>
          {/* Over the canvas and its panels, which stay mounted: the editor is as it was on close. */}
          {monitoring && <MonitoringPanel />}
        </div>
        <Inspector />
      </div>
      <Notices />
      {dialog?.kind === 'variables' && <VariablesDialog onClose={() => controller.closeDialog()} />}
      {dialog?.kind === 'connections' && <ConnectionsDialog focus={dialog.focus} onClose={() => controller.closeDialog()} />}
      {dialog?.kind === 'secrets' && <SecretsDialog onClose={() => controller.closeDialog()} />}
    </div>
  );
}

export function App({ controller }: { controller: Controller }) {
  return (
    <ControllerContext.Provider value={controller}>
      <ReactFlowProvider>
        <Shell />
      </ReactFlowProvider>
    </ControllerContext.Provider>
  );
}
