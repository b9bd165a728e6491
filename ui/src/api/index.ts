// Picks the host. Only the Tauri shell exists today; a remote-server backend will join it.
import { isTauri } from '@tauri-apps/api/core';
import type { Backend, Platform } from './backend';

export type { Backend, ExampleFlow, Platform, SecretProviderName, Settings, Theme } from './backend';
export { DEFAULT_SETTINGS, errorMessage } from './backend';

export interface Host {
  backend: Backend;
  platform: Platform;
}

/** The host this page runs in, or null outside the desktop app (no engine to talk to). */
export async function createHost(): Promise<Host | null> {
  if (!isTauri()) return null;
  const { TauriBackend, TauriPlatform } = await import('./tauri');
  return { backend: new TauriBackend(), platform: new TauriPlatform() };
}
