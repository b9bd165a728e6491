import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xyflow/react/dist/style.css';
import './styles.css';
import { createHost } from './api';
import { App } from './App';
import { Controller } from './store/controller';
import { createFlowStore, type FlowStore } from './store/flowStore';

declare global {
  interface Window {
    __FLOW_TEST__?: unknown;
    __flowStore?: FlowStore;
  }
}

async function start(): Promise<void> {
  const host = await createHost();
  const root = document.getElementById('root') as HTMLElement;
  if (!host) {
    root.textContent =
      'Flow Platform runs inside its desktop app, which embeds the engine: start it with scripts/desktop.';
    return;
  }
  const store = createFlowStore();
  const controller = new Controller(store, host.backend, host.platform);
  // End-to-end tests drive and read the store; exposed only when they ask for it (the desktop
  // shell sets the flag before the page loads when it runs under test).
  if (window.__FLOW_TEST__) window.__flowStore = store;
  createRoot(root).render(
    <StrictMode>
      <App controller={controller} />
    </StrictMode>,
  );
  await controller.init();
}

void start();
