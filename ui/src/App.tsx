import { ReactFlowProvider } from '@xyflow/react';
import { useEffect, useState } from 'react';
import { Canvas } from './components/Canvas';
import { ConnectionsDialog } from './components/ConnectionsDialog';
import { HistoryPanel } from './components/HistoryPanel';
import { Inspector } from './components/Inspector';
import { Notices } from './components/Notices';
import { Palette } from './components/Palette';
import { PreviewPanel } from './components/PreviewPanel';
import { ProblemsList } from './components/ProblemsList';
import { Toolbar } from './components/Toolbar';
import { VariablesDialog } from './components/VariablesDialog';
import { useKeyboardShortcuts } from './components/useKeyboardShortcuts';
import type { Controller } from './store/controller';
import { ControllerContext, useApp, useFlow } from './store/context';

export type Dialog = 'variables' | 'connections' | null;

function Shell() {
  const [dialog, setDialog] = useState<Dialog>(null);
  const theme = useApp((s) => s.settings.theme);
  const name = useFlow((s) => s.meta.name);
  const dirty = useFlow((s) => s.dirty);
  useKeyboardShortcuts();

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  useEffect(() => {
    document.title = `${dirty ? '• ' : ''}${name} — Flow Platform`;
  }, [name, dirty]);

  return (
    <div className="app">
      <Toolbar onOpenDialog={setDialog} />
      <div className="workspace">
        <Palette />
        <div className="main-column">
          <Canvas />
          <div className="bottom-dock">
            <ProblemsList />
            <HistoryPanel />
            <PreviewPanel />
          </div>
        </div>
        <Inspector onOpenDialog={setDialog} />
      </div>
      <Notices />
      {dialog === 'variables' && <VariablesDialog onClose={() => setDialog(null)} />}
      {dialog === 'connections' && <ConnectionsDialog onClose={() => setDialog(null)} />}
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
