// A flow larger than the window: it opens at a readable zoom on part of it, and Fit view then
// shows every node (React Flow's own fit would see only the nodes rendered, those in view).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launch, screenshot, tid, waitFor } from './harness.mjs';

const NODES = 300;

/** generate_rows -> 298 filters -> collect, laid out in rows of 25. */
function chainFlow(n) {
  const at = (i) => ({ x: (i % 25) * 260, y: Math.floor(i / 25) * 160 });
  const nodes = [{ id: 'n0', type: 'generate_rows', params: { count: 10, fields: { id: { sequence: { start: 1 } } } }, position: at(0) }];
  for (let i = 1; i < n - 1; i++) {
    nodes.push({ id: `n${i}`, type: 'filter', params: { conditions: [{ field: 'id', op: 'gte', value: 0 }] }, position: at(i) });
  }
  nodes.push({ id: `n${n - 1}`, type: 'collect', params: {}, position: at(n - 1) });
  const edges = nodes.slice(1).map((node, i) => ({ from: { node: nodes[i].id, port: 'out' }, to: { node: node.id, port: 'in' } }));
  return { version: 1, name: `Chain of ${n}`, nodes, edges };
}

/** The zoom, and how many of the flow's nodes lie wholly inside the canvas's view. */
function view(browser) {
  return browser.execute(() => {
    const rf = window.__flowReactFlow;
    const { x, y, zoom } = rf.getViewport();
    const box = document.querySelector('.react-flow__renderer').getBoundingClientRect();
    const inside = window.__flowStore.getState().nodes.filter((n) => {
      const left = n.position.x * zoom + x;
      const top = n.position.y * zoom + y;
      return left >= 0 && top >= 0 && left + 200 * zoom <= box.width && top + 96 * zoom <= box.height;
    }).length;
    return { zoom, inside };
  });
}

describe('canvas', { timeout: 300_000 }, () => {
  let app;
  let browser;
  before(async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'flow-canvas-')), 'chain.json');
    writeFileSync(path, JSON.stringify(chainFlow(NODES)));
    app = await launch({ env: { FLOW_TEST_OPEN_PATH: path } });
    browser = app.browser;
  });
  after(async () => {
    if (browser) await screenshot(browser, 'canvas');
    await app?.close();
  });

  it('opens a large flow at a readable zoom, on part of it', async () => {
    await (await browser.$(tid('open-button'))).click();
    await waitFor(browser, async () => (await browser.execute(() => window.__flowStore.getState().nodes.length)) === NODES, 20_000, 'the flow did not open');
    await waitFor(browser, async () => (await view(browser)).inside > 0, 10_000, 'no node in view after the open');
    const opened = await view(browser);
    assert.ok(opened.zoom >= 0.5, `opened at zoom ${opened.zoom}`);
    assert.ok(opened.inside < NODES, `all ${NODES} nodes in view at zoom ${opened.zoom}`);
  });

  it('shows every node after Fit view', async () => {
    await (await browser.$(tid('fit-view-button'))).click();
    await waitFor(browser, async () => (await view(browser)).inside === NODES, 10_000, 'Fit view left nodes outside the view');
    const fitted = await view(browser);
    assert.ok(fitted.zoom < 0.5, `fitted at zoom ${fitted.zoom}`);
  });
});
