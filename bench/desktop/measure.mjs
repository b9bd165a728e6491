// The desktop measures (see bench/desktop/run). Prints a table and merges the figures into
// bench/results/latest.json.
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, ROOT, tid } from '../../tests/desktop/harness.mjs';

const RESULTS = join(ROOT, 'bench', 'results', 'latest.json');
const CLK_TCK = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;
const BOOT_MS = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))[1]) * 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const fields = text.slice(close + 2).split(' ');
    return { pid, comm, ppid: Number(fields[1]), startTicks: Number(fields[19]) };
  } catch {
    return null;
  }
}

/** Every descendant of `root` (not root itself). */
function descendants(root) {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => stat(Number(d))).filter(Boolean);
  const out = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift();
    for (const s of all) {
      if (s.ppid === p) {
        out.push(s);
        queue.push(s.pid);
      }
    }
  }
  return out;
}

/** The app process (started by WebKitWebDriver under the tauri-driver group). */
function appProcess(driverPid) {
  const app = descendants(driverPid).find((s) => s.comm === 'flow-desktop');
  if (!app) throw new Error('flow-desktop process not found');
  return app;
}

function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function startOnce() {
  const app = await launch({ waitFor: '[data-testid^="palette-item-"]' });
  try {
    const proc = appProcess(app.driverPid);
    const startedAt = BOOT_MS + (proc.startTicks * 1000) / CLK_TCK;
    const paletteAt = await app.browser.execute(() => window.__flowMarks?.palette ?? null);
    if (!paletteAt) throw new Error('no palette mark');
    return { ms: paletteAt - startedAt, app, proc };
  } catch (e) {
    await app.close();
    throw e;
  }
}

function chainFlow(n) {
  const nodes = [{ id: 'n0', type: 'generate_rows', params: { count: 10, fields: { id: { sequence: { start: 1 } } } }, position: { x: 0, y: 0 } }];
  for (let i = 1; i < n - 1; i++) {
    nodes.push({ id: `n${i}`, type: 'filter', params: { conditions: [{ field: 'id', op: 'gte', value: 0 }] }, position: { x: (i % 25) * 260, y: Math.floor(i / 25) * 160 } });
  }
  nodes.push({ id: `n${n - 1}`, type: 'collect', params: {}, position: { x: 0, y: Math.ceil(n / 25) * 160 } });
  const edges = nodes.slice(1).map((node, i) => ({ from: { node: nodes[i].id, port: 'out' }, to: { node: node.id, port: 'in' } }));
  return { version: 1, name: `Chain of ${n}`, nodes, edges };
}

function bigRunFlow(rows) {
  return {
    version: 1,
    name: `Stall probe ${rows}`,
    nodes: [
      { id: 'gen', type: 'generate_rows', params: { count: rows, fields: { id: { sequence: { start: 1 } }, tag: { cycle: ['a', 'b', 'c'] } } }, position: { x: 0, y: 0 } },
      { id: 'keep', type: 'filter', params: { conditions: [{ field: 'tag', op: 'ne', value: 'c' }] }, position: { x: 300, y: 0 } },
      { id: 'sink', type: 'collect', params: {}, position: { x: 600, y: 0 } },
    ],
    edges: [
      { from: { node: 'gen', port: 'out' }, to: { node: 'keep', port: 'in' } },
      { from: { node: 'keep', port: 'out' }, to: { node: 'sink', port: 'in' } },
    ],
  };
}

/**
 * Clicks Open (the test dialog answers FLOW_TEST_OPEN_PATH) and times it until `nodes` nodes and
 * `edges` edges are in the page and one more frame has been painted.
 */
async function openTimed(browser, nodes, edges) {
  return browser.executeAsync(
    (nodes, edges, done) => {
      const t0 = performance.now();
      document.querySelector('[data-testid="open-button"]').click();
      const check = () => {
        if (
          document.querySelectorAll('.react-flow__node').length >= nodes &&
          document.querySelectorAll('.react-flow__edge').length >= edges
        ) {
          requestAnimationFrame(() => done(performance.now() - t0));
        } else if (performance.now() - t0 > 60_000) {
          done(-1);
        } else {
          requestAnimationFrame(check);
        }
      };
      requestAnimationFrame(check);
    },
    nodes,
    edges,
  );
}

const results = {};

// 1 + 2: start-up (median of 3) and idle PSS of the whole tree (after the last start settles).
const starts = [];
let last;
for (let i = 0; i < 3; i++) {
  const run = await startOnce();
  starts.push(run.ms);
  if (i < 2) await run.app.close();
  else last = run;
}
results.desktop_start_ms = Math.round(median(starts));
await sleep(5000);
const tree = [last.proc, ...descendants(last.proc.pid)];
const pss = tree.map((p) => ({ comm: p.comm, kb: pssKb(p.pid) }));
results.desktop_idle_pss_mb = Math.round((pss.reduce((s, p) => s + p.kb, 0) / 1024) * 10) / 10;
await last.app.close();
console.log('start-up runs (ms):', starts.map(Math.round).join(', '));
console.log('idle PSS by process:', pss.map((p) => `${p.comm} ${(p.kb / 1024).toFixed(1)} MB`).join(', '));

// 3 + 4: open a 1,000-node flow; run a 10M-record flow while watching animation frames.
const dir = join(ROOT, 'target', 'bench-desktop');
mkdirSync(dir, { recursive: true });
const chainPath = join(dir, 'chain-1000.json');
writeFileSync(chainPath, JSON.stringify(chainFlow(1000), null, 2));
const bigPath = join(dir, 'run-10m.json');
writeFileSync(bigPath, JSON.stringify(bigRunFlow(10_000_000), null, 2));

{
  const opens = [];
  for (let i = 0; i < 3; i++) {
    const app = await launch({ env: { FLOW_TEST_OPEN_PATH: chainPath }, waitFor: '[data-testid^="palette-item-"]' });
    try {
      const ms = await openTimed(app.browser, 1000, 999);
      if (ms < 0) throw new Error('the 1,000-node flow did not render within 60 s');
      opens.push(ms);
    } finally {
      await app.close();
    }
  }
  results.canvas_1000_open_ms = Math.round(median(opens));
  console.log('1,000-node opens (ms):', opens.map(Math.round).join(', '));
}

// Two runs; the worst gap counts.
for (let i = 0; i < 2; i++) {
  const app = await launch({ env: { FLOW_TEST_OPEN_PATH: bigPath }, waitFor: '[data-testid^="palette-item-"]' });
  const { browser } = app;
  try {
    await openTimed(browser, 3, 2);
    await sleep(1000);
    await browser.execute(() => {
      const s = { max: 0, last: performance.now(), on: true, frames: 0 };
      window.__stall = s;
      const tick = (t) => {
        s.max = Math.max(s.max, t - s.last);
        s.last = t;
        s.frames += 1;
        if (s.on) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const started = Date.now();
    await browser.$(tid('run-button')).click();
    await browser.waitUntil(
      async () =>
        ['succeeded', 'failed', 'cancelled'].includes((await browser.$(tid('execution-state')).getText()).trim().toLowerCase()),
      { timeout: 600_000, interval: 500, timeoutMsg: 'the 10M-record run did not end within 10 minutes' },
    );
    const runSeconds = (Date.now() - started) / 1000;
    const state = (await browser.$(tid('execution-state')).getText()).trim();
    const stall = await browser.execute(() => ((window.__stall.on = false), { max: window.__stall.max, frames: window.__stall.frames }));
    results.ui_max_stall_ms = Math.max(results.ui_max_stall_ms ?? 0, Math.round(stall.max));
    console.log(`10M-record run: ${state} in ${runSeconds.toFixed(1)} s, ${stall.frames} frames, longest gap ${stall.max.toFixed(1)} ms`);
  } finally {
    await app.close();
  }
}

const targets = { desktop_start_ms: 2000, desktop_idle_pss_mb: 350, canvas_1000_open_ms: 1000, ui_max_stall_ms: 100 };
console.log('\nmeasure                 value     target');
for (const [k, v] of Object.entries(results)) {
  console.log(`${k.padEnd(22)} ${String(v).padStart(8)}   < ${targets[k]} ${v < targets[k] ? 'ok' : 'MISSED'}`);
}
const merged = existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : {};
Object.assign(merged, results);
const sorted = Object.fromEntries(Object.keys(merged).sort().map((k) => [k, merged[k]]));
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(RESULTS, JSON.stringify(sorted, null, 2) + '\n');
console.log(`written to ${RESULTS}`);
