// Shared setup for the browser tests: fixtures, server, Chromium.
import { existsSync, readFileSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync, createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { after, before } from 'node:test';
import { startServer } from '../serve.mjs';

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(WEB, '..');
export const DIST = process.env.STELE_DIST ? resolve(process.env.STELE_DIST) : join(WEB, 'dist');
export const SAMPLES = process.env.STELE_SAMPLES ? resolve(process.env.STELE_SAMPLES) : join(REPO, 'target/test-samples');
export const SHOTS = join(REPO, 'target/screenshots');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function need(path, hint) {
  if (!existsSync(path)) throw new Error(`missing ${path}${hint ? ` (${hint})` : ''}`);
  return path;
}

export function sample(name) {
  return need(join(SAMPLES, name), `fixtures come from STELE_SAMPLES=${SAMPLES}`);
}

/** The first key line of key.txt. */
export function trustedKey() {
  const text = readFileSync(sample('key.txt'), 'utf8');
  const key = text.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  if (!key) throw new Error('key.txt has no key line');
  return key;
}

/** A well-formed C2SP Ed25519 verifier key that signed nothing here. */
export function wrongKey(name = 'wrong.example') {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const typed = Buffer.concat([Buffer.from([0x01]), raw]);
  const id = createHash('sha256').update(Buffer.concat([Buffer.from(`${name}\n`), typed])).digest().subarray(0, 4).toString('hex');
  return `${name}+${id}+${typed.toString('base64')}`;
}

/**
 * Reads the expectation written next to a fixture: NAME.expect, or NAME
 * without its extension + .expect, as JSON or as "key: value" lines.
 * Returns {verdict, entry, code, line} (absent keys undefined).
 */
export function readExpect(file) {
  const candidates = [`${file}.expect`, file.replace(/\.[^./]+$/, '.expect'), `${file}.expect.json`];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`no expect file for ${file} (looked for ${candidates.join(', ')})`);
  const text = readFileSync(found, 'utf8');
  let o;
  try {
    o = JSON.parse(text);
  } catch {
    o = {};
    for (const l of text.split('\n')) {
      const m = /^\s*([\w.-]+)\s*[:=]\s*(.*?)\s*$/.exec(l);
      if (m && !l.trim().startsWith('#')) o[m[1].toLowerCase()] ??= m[2];
    }
  }
  const num = (v) => (v == null || v === '' ? undefined : Number(String(v).replace(/[^\d]/g, '')));
  const f = Array.isArray(o.failures) ? o.failures[0] || {} : {};
  return {
    verdict: o.verdict ?? o.expect ?? o.outcome,
    entry: num(o.entry ?? o.failing_entry ?? o.first_failure_entry ?? f.entry),
    code: o.code ?? f.code,
    line: num(o.line ?? f.line),
    file: found,
  };
}

export function listSamples(re) {
  if (!existsSync(SAMPLES)) return [];
  return readdirSync(SAMPLES).filter((f) => re.test(f)).sort().map((f) => join(SAMPLES, f));
}

/** The biggest export in the samples (the "~100 MB" one). */
export function largeSample(minBytes = 50e6) {
  const all = listSamples(/\.stele$/).map((p) => ({ p, size: statSync(p).size })).sort((a, b) => b.size - a.size);
  if (!all.length || all[0].size < minBytes) throw new Error(`no export of at least ${minBytes / 1e6} MB in ${SAMPLES}`);
  return all[0];
}

export async function launch() {
  need(CHROMIUM, 'set CHROMIUM or apt-get install chromium');
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

/**
 * Chromium and the page server for one test file: started before its
 * tests, closed after them. Read `env.browser` and `env.url` inside tests.
 * @returns {{browser: import('playwright-core').Browser, server: import('node:http').Server, url: string}}
 */
export function browserAndServer() {
  const env = /** @type {any} */ ({});
  before(async () => {
    env.browser = await launch();
    ({ server: env.server, url: env.url } = await serve());
  });
  after(async () => {
    await env.browser?.close();
    await new Promise((r) => (env.server ? env.server.close(r) : r(undefined)));
  });
  return env;
}

export async function serve() {
  need(join(DIST, 'index.html'), 'run node web/build.mjs first');
  return startServer({ root: DIST, samples: SAMPLES, port: 0, quiet: true });
}

export function shotPath(name) {
  mkdirSync(SHOTS, { recursive: true });
  return join(SHOTS, name);
}

/** Opens the page and waits until the verifier and its worker are ready. */
export async function openPage(browser, url, { viewport = { width: 1280, height: 1000 } } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  await page.goto(url);
  await page.waitForSelector('html[data-warm]', { timeout: 20_000 });
  return { context, page, problems };
}

/** Fills the key, chooses the file, and waits for this run's outcome; returns the verdict word. */
export async function verifyFileInPage(page, path, key, { timeout = 60_000 } = {}) {
  const before = Number((await page.getAttribute('html', 'data-runs')) || 0);
  await page.fill('#key', key);
  await page.setInputFiles('#file', path);
  await page.waitForFunction((n) => Number(document.documentElement.dataset.runs || 0) > n, before, { timeout });
  return (await page.textContent('#verdict-word')).trim();
}

/** Runs web/node_modules' tsc on a project; {ok, out}. */
export function tsc(project) {
  const r = spawnSync(join(WEB, 'node_modules/.bin/tsc'), ['-p', project, '--pretty', 'false'], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
}
