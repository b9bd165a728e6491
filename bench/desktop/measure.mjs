// The desktop measures (see bench/desktop/run). Prints a table and merges the figures into
// bench/results/latest.json (keeping the keys already there).
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP, launch, ROOT, tid } from '../../tests/desktop/harness.mjs';

const RESULTS = join(ROOT, 'bench', 'results', 'latest.json');
const CLK_TCK = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;
const BOOT_MS = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))[1]) * 1000;

/** Which build is measured (bench/desktop/run says; the binary otherwise). */
const BUILD = `${process.env.BENCH_DESKTOP_BUILD ?? 'unknown build'}: ${APP}`;
console.log(`measuring ${BUILD}`);

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
 * Clicks Open (the test dialog answers FLOW_TEST_OPEN_PATH) and times it until the flow is on the
 * canvas and one more frame has been painted: the store holds `nodes` nodes and `edges` edges,
 * every node inside the view is rendered and measured, and so is every edge between two of them.
 * (The canvas renders only what is in view; a build without that renders every node, so there
 * the condition is all `nodes` nodes and `edges` edges in the page, as before.)
 */
async function openTimed(browser, nodes, edges) {
  return browser.executeAsync(
    (nodes, edges, done) => {
      const complete = () => {
        const store = window.__flowStore;
        const rf = window.__flowReactFlow;
        const els = document.querySelectorAll('.react-flow__node');
        const edgeEls = document.querySelectorAll('.react-flow__edge').length;
        if (!rf) return els.length >= nodes && edgeEls >= edges;
        const s = store.getState();
        if (s.nodes.length < nodes || s.edges.length < edges || els.length === 0) return false;
        for (const el of els) if (el.style.visibility === 'hidden') return false;
        const box = document.querySelector('.react-flow__renderer').getBoundingClientRect();
        const a = rf.screenToFlowPosition({ x: box.left, y: box.top });
        const b = rf.screenToFlowPosition({ x: box.right, y: box.bottom });
        const inView = rf.getIntersectingNodes({ x: a.x, y: a.y, width: b.x - a.x, height: b.y - a.y }, true);
        const ids = new Set(inView.map((n) => n.id));
        const rendered = new Set([...els].map((el) => el.getAttribute('data-id')));
        for (const id of ids) if (!rendered.has(id)) return false;
        return edgeEls >= s.edges.filter((e) => ids.has(e.source) && ids.has(e.target)).length;
      };
      const t0 = performance.now();
      document.querySelector('[data-testid="open-button"]').click();
      const check = () => {
        if (complete()) {
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

/**
 * Pans the canvas for `seconds` with a mouse drag on the pane (one move per animation frame, so
 * every frame asks for a new view; through React Flow's own drag handling) and returns the rate
 * of frames in which the view moved, after zooming in to at least `minZoom` with the zoom-in
 * control.
 */
async function panFps(browser, minZoom, seconds) {
  return browser.executeAsync(
    (minZoom, seconds, done) => {
      const frame = () => new Promise((r) => requestAnimationFrame(r));
      (async () => {
        // Zoom in (x1.2 a click, about the view's centre) until the zoom reaches `minZoom`.
        const viewport = document.querySelector('.react-flow__viewport');
        const zoom = () => Number(/scale\(([\d.]+)\)/.exec(viewport.style.transform)?.[1] ?? 1);
        for (let i = 0; i < 40 && zoom() < minZoom; i++) {
          document.querySelector('.react-flow__controls-zoomin').click();
          await new Promise((r) => setTimeout(r, 50));
          await frame();
        }
        await new Promise((r) => setTimeout(r, 1000));
        const pane = document.querySelector('.react-flow__pane');
        const r = pane.getBoundingClientRect();
        const cx = r.left + r.width / 2;
        let x = cx;
        let y = r.top + r.height / 2;
        const mouse = (type, target) =>
          target.dispatchEvent(
            new MouseEvent(type, { bubbles: true, cancelable: true, clientX: x, clientY: y, button: 0, buttons: type === 'mouseup' ? 0 : 1, view: window }),
          );
        mouse('mousedown', pane);
        let last = viewport.style.transform;
        let moved = 0;
        let dir = 1;
        const t0 = performance.now();
        while (performance.now() - t0 < seconds * 1000) {
          x += 15 * dir;
          y += 7 * dir;
          if (Math.abs(x - cx) > 300) dir = -dir;
          mouse('mousemove', window);
          await frame();
          const now = viewport.style.transform;
          if (now !== last) moved += 1;
          last = now;
        }
        const elapsed = (performance.now() - t0) / 1000;
        mouse('mouseup', window);
        done({ fps: moved / elapsed, rendered: document.querySelectorAll('.react-flow__node').length, view: last });
      })();
    },
    minZoom,
    seconds,
  );
}

const results = {};

// 1 + 2: start-up and idle PSS of the whole tree (5 s after each start), each the median of 3.
const starts = [];
const psses = [];
let pssDetail;
for (let i = 0; i < 3; i++) {
  const run = await startOnce();
  try {
    starts.push(run.ms);
    await sleep(5000);
    const tree = [run.proc, ...descendants(run.proc.pid)];
    const pss = tree.map((p) => ({ comm: p.comm, kb: pssKb(p.pid) }));
    psses.push(pss.reduce((sum, p) => sum + p.kb, 0) / 1024);
    pssDetail = pss;
  } finally {
    await run.app.close();
  }
}
results.desktop_start_ms = Math.round(median(starts));
results.desktop_idle_pss_mb = Math.round(median(psses) * 10) / 10;
console.log('start-up runs (ms):', starts.map(Math.round).join(', '));
console.log('idle PSS runs (MB):', psses.map((p) => p.toFixed(1)).join(', '));
console.log('idle PSS by process (last run):', pssDetail.map((p) => `${p.comm} ${(p.kb / 1024).toFixed(1)} MB`).join(', '));

// 3-6: open a 1,000- and a 5,000-node flow; pan the 1,000-node one; run a 10M-record flow while
// watching animation frames. Each in a fresh app, 3 times; the median counts.
const dir = join(ROOT, 'target', 'bench-desktop');
mkdirSync(dir, { recursive: true });
const flowFile = (name, flow) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(flow, null, 2));
  return path;
};
const chain1000 = flowFile('chain-1000.json', chainFlow(1000));
const chain5000 = flowFile('chain-5000.json', chainFlow(5000));
const bigPath = flowFile('run-10m.json', bigRunFlow(10_000_000));

async function withApp(openPath, body) {
  const app = await launch({ env: { FLOW_TEST_OPEN_PATH: openPath }, waitFor: '[data-testid^="palette-item-"]' });
  try {
    return await body(app.browser);
  } finally {
    await app.close();
  }
}

for (const n of [1000, 5000]) {
  const opens = [];
  for (let i = 0; i < 3; i++) {
    const ms = await withApp(n === 1000 ? chain1000 : chain5000, (browser) => openTimed(browser, n, n - 1));
    if (ms < 0) throw new Error(`the ${n}-node flow did not render within 60 s`);
    opens.push(ms);
  }
  results[`canvas_${n}_open_ms`] = Math.round(median(opens));
  console.log(`${n}-node opens (ms):`, opens.map(Math.round).join(', '));
}

{
  // Panning where one works (zoomed in to about 100 %, nodes entering and leaving the view), and
  // over the whole flow as Fit view shows it (about 10 %, every node in view: information only).
  const pans = [];
  const overview = [];
  for (let i = 0; i < 3; i++) {
    await withApp(chain1000, async (browser) => {
      if ((await openTimed(browser, 1000, 999)) < 0) throw new Error('the 1,000-node flow did not render within 60 s');
      await browser.execute(() => document.querySelector('[data-testid="fit-view-button"]').click());
      await sleep(1500);
      const far = await panFps(browser, 0, 3);
      const near = await panFps(browser, 1, 3);
      overview.push(far.fps);
      pans.push(near.fps);
      console.log(
        `1,000-node pan: ${near.fps.toFixed(1)} fps at ${near.view} (${near.rendered} nodes rendered); ` +
          `overview ${far.fps.toFixed(1)} fps (${far.rendered} rendered)`,
      );
    });
  }
  results.canvas_1000_pan_fps = Math.round(median(pans) * 10) / 10;
  results.canvas_1000_pan_overview_fps = Math.round(median(overview) * 10) / 10;
}

{
  const stalls = [];
  for (let i = 0; i < 3; i++) {
    await withApp(bigPath, async (browser) => {
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
      stalls.push(stall.max);
      console.log(`10M-record run: ${state} in ${runSeconds.toFixed(1)} s, ${stall.frames} frames, longest gap ${stall.max.toFixed(1)} ms`);
    });
  }
  results.ui_max_stall_ms = Math.round(median(stalls));
}

// [comparison, bound]; the overview pan has none (information).
const targets = {
  desktop_start_ms: ['<', 2000],
  desktop_idle_pss_mb: ['<', 350],
  canvas_1000_open_ms: ['<=', 1000],
  canvas_5000_open_ms: ['<=', 3000],
  canvas_1000_pan_fps: ['>=', 30],
  ui_max_stall_ms: ['<=', 100],
};
console.log(`\nbuild measured: ${BUILD}`);
console.log('measure                        median    target');
for (const [k, v] of Object.entries(results)) {
  const t = targets[k];
  const ok = !t || (t[0] === '<' ? v < t[1] : t[0] === '<=' ? v <= t[1] : v >= t[1]);
  console.log(`${k.padEnd(29)} ${String(v).padStart(8)}   ${t ? `${t[0]} ${t[1]} ${ok ? 'ok' : 'MISSED'}` : '(information)'}`);
}
// Merged by line (one key per line, sorted), so the other benchmarks' figures keep their text.
const raw = {};
if (existsSync(RESULTS)) {
  for (const line of readFileSync(RESULTS, 'utf8').split('\n')) {
    const m = /^\s*"([^"]+)":\s*(.*?),?\s*$/.exec(line);
    if (m) raw[m[1]] = m[2];
  }
}
for (const [k, v] of Object.entries(results)) raw[k] = JSON.stringify(v);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const keys = Object.keys(raw).sort();
writeFileSync(RESULTS, `{\n${keys.map((k) => `  "${k}": ${raw[k]}`).join(',\n')}\n}\n`);
console.log(`written to ${RESULTS}`);
