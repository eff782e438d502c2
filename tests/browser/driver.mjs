// Drives Debian's /usr/bin/chromium with playwright-core for tests/browser/harness.py.
//
// Protocol: JSON lines. argv[2] is a JSON object {userDataDir, args, launchTimeoutMs}.
// Once the browser runs the driver prints {"event": "ready", ...}. Then every stdin line is
// a request {"id", "cmd", ...} and gets exactly one stdout line {"id", "ok", "result"} or
// {"id", "ok": false, "error"}. stdin closing, the "close" command or SIGTERM close the
// browser and end the process. Playwright talks to Chromium over a pipe: nothing listens.

import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

const options = JSON.parse(process.argv[2] ?? '{}');
const pages = new Map();
let nextPage = 1;
let context;
let closing;

function send(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function pageOf(id) {
  const entry = pages.get(id);
  if (!entry) throw new Error(`no page ${id}`);
  return entry;
}

// Serve `routes` ({url, path | body, contentType}) from this process: the page gets the
// origin of the URL (e.g. the VAS server's) without the server having to host the files.
async function addRoutes(page, routes) {
  for (const route of routes ?? []) {
    await page.route(route.url, async (r) => {
      const body = route.path !== undefined ? await readFile(route.path) : route.body;
      await r.fulfill({ status: 200, contentType: route.contentType ?? 'text/html', body });
    });
  }
}

const commands = {
  async newPage({ routes }) {
    const page = await context.newPage();
    const entry = { page, console: [], errors: [] };
    page.on('console', (m) => entry.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => entry.errors.push(String(e.stack ?? e)));
    await addRoutes(page, routes);
    const id = nextPage++;
    pages.set(id, entry);
    return id;
  },
  async goto({ page, url, timeoutMs = 15000 }) {
    const response = await pageOf(page).page.goto(url, { timeout: timeoutMs, waitUntil: 'load' });
    return response ? response.status() : null;
  },
  async evaluate({ page, source, arg, timeoutMs = 30000 }) {
    // The source of a JS function, called in the page with `arg` (JSON-serializable).
    const fn = new Function(`return (${source});`)();
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`evaluate timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([pageOf(page).page.evaluate(fn, arg), timeout]);
    } finally {
      clearTimeout(timer);
    }
  },
  async screenshot({ page, path, fullPage = true }) {
    await pageOf(page).page.screenshot({ path, fullPage });
    return path;
  },
  async logs({ page }) {
    const entry = pageOf(page);
    return { console: entry.console, errors: entry.errors };
  },
  async closePage({ page }) {
    await pageOf(page).page.close();
    pages.delete(page);
    return true;
  },
  async close() {
    await shutdown(0);
    return true;
  },
};

async function shutdown(code) {
  if (!closing) {
    closing = (async () => {
      try {
        await context?.close();
      } finally {
        process.exitCode = code;
      }
    })();
  }
  return closing;
}

async function main() {
  const started = Date.now();
  context = await chromium.launchPersistentContext(options.userDataDir, {
    executablePath: options.executablePath ?? '/usr/bin/chromium',
    headless: true,
    args: options.args ?? [],
    timeout: options.launchTimeoutMs ?? 30000,
    viewport: { width: 1280, height: 720 },
  });
  const browser = context.browser();
  const [first] = context.pages();
  const userAgent = first ? await first.evaluate(() => navigator.userAgent) : null;
  send({
    event: 'ready',
    version: browser ? browser.version() : null,
    userAgent,
    launchMs: Date.now() - started,
    playwright: (await import('playwright-core/package.json', { with: { type: 'json' } })).default.version,
  });

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request;
    try {
      request = JSON.parse(line);
      const handler = commands[request.cmd];
      if (!handler) throw new Error(`unknown command ${request.cmd}`);
      const result = await handler(request);
      send({ id: request.id, ok: true, result: result ?? null });
      if (request.cmd === 'close') return;
    } catch (error) {
      send({ id: request?.id ?? null, ok: false, error: String(error?.stack ?? error) });
    }
  }
  await shutdown(0); // stdin closed: the harness is gone
}

process.on('SIGTERM', () => shutdown(0).then(() => process.exit()));
process.on('SIGINT', () => shutdown(0).then(() => process.exit()));

main().catch((error) => {
  send({ event: 'error', error: String(error?.stack ?? error) });
  shutdown(1).finally(() => process.exit(1));
});
