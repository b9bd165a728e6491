// What the Monitoring panel's end-to-end tests share: small flows built through the UI, opening
// and closing the panel, reading an element's text.
import { connectPorts, dropFromPalette, edgeCount, selectNode, setField, tid, waitFor } from './harness.mjs';

/** An element's text, wherever it is scrolled to (null when it is not there). */
export function textOf(browser, id) {
  return browser.execute((selector) => document.querySelector(selector)?.textContent.trim() ?? null, tid(id));
}

/** generate_rows (10 rows) -> [fail after 1 record] -> collect, named `name`; returns the node ids. */
export async function buildFlow(browser, name, { failing }) {
  const gen = await dropFromPalette(browser, 'generate_rows', 140, 160);
  const fail = failing ? await dropFromPalette(browser, 'fail', 460, 160) : null;
  const collect = await dropFromPalette(browser, 'collect', 780, 160);
  if (fail) {
    await connectPorts(browser, gen, 'out', fail, 'in');
    await connectPorts(browser, fail, 'out', collect, 'in');
  } else {
    await connectPorts(browser, gen, 'out', collect, 'in');
  }
  const edges = fail ? 2 : 1;
  await waitFor(browser, async () => (await edgeCount(browser)) === edges, 5_000, 'edges not added');
  await selectNode(browser, gen);
  await setField(browser, 'param-count', 10);
  if (fail) {
    await selectNode(browser, fail);
    await setField(browser, 'param-after_records', 1);
  }
  await setField(browser, 'flow-name-input', name);
  await waitFor(browser, async () => (await browser.$$(`${tid('problems-list')} li`).length) === 0, 10_000, `${name} still has problems`);
  return { gen, fail, collect };
}

export async function openPanel(browser) {
  await browser.$(tid('monitoring-button')).click();
  await browser.$(tid('monitoring-panel')).waitForExist({ timeout: 5_000 });
}

export async function closePanel(browser) {
  await browser.$(tid('monitoring-close')).click();
  await waitFor(browser, async () => !(await browser.$(tid('monitoring-panel')).isExisting()), 5_000, 'the panel did not close');
}
