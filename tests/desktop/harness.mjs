// Test harness of the desktop end-to-end tests: starts the real app (the custom-protocol debug
// build of src-tauri) through tauri-driver + WebKitWebDriver with its own temporary HOME, history
// database and save path, and drives the UI through its data-testid contract (see README.md).
// Run under Xvfb and dbus-run-session (scripts/test-desktop does both).
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { remote } from 'webdriverio';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
/** The app under test; scripts/test-desktop builds it. */
export const APP = process.env.FLOW_DESKTOP_BIN ?? join(TARGET, 'debug', 'flow-desktop');
const TAURI_DRIVER = process.env.TAURI_DRIVER ?? 'tauri-driver';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

async function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise((ok) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), ok(true)));
      socket.once('error', () => ok(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await sleep(100);
  }
}

/**
 * Starts the app. `env` adds to the app's environment (FLOW_TEST=1, a fresh HOME and
 * FLOW_HISTORY_DB, FLOW_TEST_SAVE_PATH and FLOW_EXAMPLES_DIR are set already).
 * Returns { browser, dir, savePath, historyDb, close }.
 */
export async function launch({ env = {}, waitFor = '[data-testid="canvas"]' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'flow-desktop-e2e-'));
  const home = join(dir, 'home');
  mkdirSync(home);
  const savePath = join(dir, 'saved-flow.json');
  const historyDb = join(dir, 'history.db');
  const port = await freePort();
  const nativePort = await freePort();
  const driverLog = [];
  const driver = spawn(TAURI_DRIVER, ['--port', String(port), '--native-port', String(nativePort)], {
    env: {
      ...process.env,
      FLOW_TEST: '1',
      HOME: home,
      XDG_DATA_HOME: join(home, '.local', 'share'),
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_CACHE_HOME: join(home, '.cache'),
      FLOW_HISTORY_DB: historyDb,
      FLOW_TEST_SAVE_PATH: savePath,
      FLOW_EXAMPLES_DIR: join(ROOT, 'flows'),
      ...env,
    },
    // Its own process group, so close() ends the driver, WebKitWebDriver and the app together.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // scripts/test-desktop ends these process groups even if this process dies first.
  if (process.env.E2E_PIDS) appendFileSync(process.env.E2E_PIDS, `${driver.pid}\n`);
  const keep = (chunk) => driverLog.push(chunk.toString());
  driver.stdout.on('data', keep);
  driver.stderr.on('data', keep);
  const killDriver = () => {
    try {
      process.kill(-driver.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  let browser;
  try {
    // tauri-driver listens at once but forwards to WebKitWebDriver, which may still be starting.
    await waitForPort(port, 15_000);
    await waitForPort(nativePort, 15_000);
    browser = await remote({
      hostname: '127.0.0.1',
      port,
      logLevel: 'error',
      connectionRetryCount: 0,
      connectionRetryTimeout: 120_000,
      capabilities: {
        browserName: 'wry',
        'wdio:enforceWebDriverClassic': true,
        'tauri:options': { application: APP },
      },
    });
    if (waitFor) await browser.$(waitFor).waitForExist({ timeout: 30_000 });
  } catch (e) {
    if (browser) await browser.deleteSession().catch(() => {});
    killDriver();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start ${APP}: ${e.message}\n${driverLog.join('')}`);
  }
  const close = async () => {
    await browser.deleteSession().catch(() => {});
    killDriver();
    rmSync(dir, { recursive: true, force: true });
  };
  return { browser, dir, savePath, historyDb, driverPid: driver.pid, close };
}

/** `[data-testid="..."]` */
export const tid = (id) => `[data-testid="${id}"]`;

/** The ids of the nodes on the canvas (from `node-<id>` elements that carry `data-state`). */
export async function nodeIds(browser) {
  return browser.execute(() =>
    [...document.querySelectorAll('[data-testid^="node-"][data-state]')].map((e) =>
      e.getAttribute('data-testid').slice('node-'.length),
    ),
  );
}

/**
 * Drags a palette item onto the canvas at (x, y) relative to the canvas, with DragEvents carrying
 * one DataTransfer (WebDriver actions do not fire HTML5 drag and drop in WebKitGTK). Returns the
 * id the UI gave the new node.
 */
export async function dropFromPalette(browser, type, x, y) {
  const before = new Set(await nodeIds(browser));
  await browser.$(tid(`palette-item-${type}`)).waitForExist({ timeout: 15_000 });
  const error = await browser.execute(
    (type, x, y) => {
      const source = document.querySelector(`[data-testid="palette-item-${type}"]`);
      const canvas = document.querySelector('[data-testid="canvas"]');
      if (!source || !canvas) return 'palette item or canvas missing';
      source.scrollIntoView({ block: 'nearest' });
      const rect = canvas.getBoundingClientRect();
      const clientX = rect.left + x;
      const clientY = rect.top + y;
      const target = document.elementFromPoint(clientX, clientY) ?? canvas;
      const dataTransfer = new DataTransfer();
      const fire = (el, name) =>
        el.dispatchEvent(new DragEvent(name, { bubbles: true, cancelable: true, clientX, clientY, dataTransfer }));
      fire(source, 'dragstart');
      fire(target, 'dragenter');
      fire(target, 'dragover');
      fire(target, 'drop');
      fire(source, 'dragend');
      return null;
    },
    type,
    x,
    y,
  );
  if (error) throw new Error(error);
  let id;
  await browser.waitUntil(
    async () => {
      id = (await nodeIds(browser)).find((n) => !before.has(n));
      return id !== undefined;
    },
    { timeout: 10_000, timeoutMsg: `no node appeared after dropping ${type}` },
  );
  return id;
}

/** The viewport centre of a node's handle (`kind` = source | target, `data-handleid` = port). */
async function handleCentre(browser, node, port, kind) {
  await browser.$(tid(`node-${node}`)).waitForExist({ timeout: 10_000 });
  const at = await browser.execute(
    (node, port, kind) => {
      // The handle is inside React Flow's node wrapper, which holds the UI's node element.
      const inner = document.querySelector(`[data-testid="node-${node}"]`);
      const wrapper = inner?.closest('.react-flow__node') ?? inner;
      const el = wrapper?.querySelector(`.react-flow__handle.${kind}[data-handleid="${port}"]`);
      if (!el) return null;
      const r = el.getBoundingClientRect();
      return { x: Math.round(r.left + r.width / 2), y: Math.round(r.top + r.height / 2) };
    },
    node,
    port,
    kind,
  );
  if (!at) throw new Error(`node ${node} has no ${kind} handle ${port}`);
  return at;
}

/**
 * Drags from an output handle to an input handle with pointer actions, as a person would
 * (viewport coordinates: handles are too small for WebDriver's element-origin checks).
 */
export async function connectPorts(browser, from, fromPort, to, toPort) {
  const a = await handleCentre(browser, from, fromPort, 'source');
  const b = await handleCentre(browser, to, toPort, 'target');
  await browser
    .action('pointer', { parameters: { pointerType: 'mouse' } })
    .move({ origin: 'viewport', x: a.x, y: a.y })
    .down({ button: 0 })
    .pause(50)
    .move({ origin: 'viewport', x: a.x + 20, y: a.y + 5, duration: 100 })
    .move({ origin: 'viewport', x: b.x, y: b.y, duration: 250 })
    .move({ origin: 'viewport', x: b.x + 1, y: b.y, duration: 50 })
    .pause(50)
    .up({ button: 0 })
    .perform();
}

/** Number of edges on the canvas. */
export async function edgeCount(browser) {
  return browser.execute(() => document.querySelectorAll('.react-flow__edge').length);
}

/** Selects a node (click on its body) so the parameter panel shows it. */
export async function selectNode(browser, id) {
  await browser.$(tid(`node-${id}`)).click();
}

/** Replaces the value of an input, select or textarea with `value`, the way a person types it. */
export async function setField(browser, testId, value) {
  const el = await browser.$(tid(testId));
  await el.waitForExist({ timeout: 10_000 });
  // Centred in its scrolling panel, so the notices in the window's bottom corner cannot cover it.
  await el.scrollIntoView({ block: 'center' });
  const tag = (await el.getTagName()).toLowerCase();
  if (tag === 'select') {
    // Options are matched by their text, else by their value attribute.
    const options = await el.$$('option');
    for (const option of options) {
      if ((await option.getText()).trim() === String(value)) return el.selectByVisibleText(await option.getText());
    }
    return el.selectByAttribute('value', String(value));
  }
  await el.click();
  // Select all and type over it: WebDriver's clear does not reach React's onChange.
  await browser.keys(['Control', 'a']);
  await browser.keys('Backspace');
  await el.addValue(String(value));
  await browser.waitUntil(async () => (await el.getValue()) === String(value), {
    timeout: 5_000,
    timeoutMsg: `${testId} did not take the value ${value}`,
  });
}

/** `node-<id>`'s data-state. */
export async function nodeState(browser, id) {
  return browser.$(tid(`node-${id}`)).getAttribute('data-state');
}

/** `{ in, out }` from `node-counters-<id>` ("in <n>", "out <n>"; thousands separators allowed). */
export async function nodeCounters(browser, id) {
  const el = await browser.$(tid(`node-counters-${id}`));
  const text = (await el.isExisting()) ? await el.getText() : '';
  const number = (word) => {
    const m = new RegExp(`${word}\\s*([\\d.,\\s]*\\d)`).exec(text);
    return m ? Number(m[1].replace(/[^\d]/g, '')) : null;
  };
  return { in: number('in'), out: number('out'), text };
}

/** Waits until `predicate()` is truthy; returns its value. */
export async function waitFor(browser, predicate, timeout, message) {
  let value;
  await browser.waitUntil(
    async () => {
      value = await predicate();
      return Boolean(value);
    },
    { timeout, interval: 50, timeoutMsg: message },
  );
  return value;
}

/** Invokes one of the app's commands directly (test set-up only, e.g. saving a connection). */
export async function invoke(browser, command, args = {}) {
  const result = await browser.executeAsync(
    (command, args, done) => {
      window.__TAURI_INTERNALS__
        .invoke(command, args)
        .then((value) => done({ ok: true, value }))
        .catch((error) => done({ ok: false, error: String(error) }));
    },
    command,
    args,
  );
  if (!result.ok) throw new Error(`${command}: ${result.error}`);
  return result.value;
}

/** Saves a screenshot to tests/desktop/artifacts/<name>.png (kept on failure for diagnosis). */
export async function screenshot(browser, name) {
  const dir = join(ROOT, 'tests', 'desktop', 'artifacts');
  mkdirSync(dir, { recursive: true });
  await browser.saveScreenshot(join(dir, `${name}.png`)).catch(() => {});
}
