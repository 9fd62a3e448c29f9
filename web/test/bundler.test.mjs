// The npm package as a dashboard developer meets it: `npm pack` web/, install
// the tarball into a fresh app (test/bundler-app: TypeScript, the package and
// its element), build that app with Vite (a devDependency of web/, so this
// runs offline after `npm ci --prefix web`), serve the output with the page's
// CSP and verify exports in Chromium. Needs the real build (web/pkg) and the
// samples, like e2e.test.mjs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WEB, launch, sample, trustedKey, listSamples, readExpect, need, tsc } from './helpers.mjs';
import { startServer } from '../serve.mjs';

const T = { timeout: 240_000 };
const APP_SRC = join(WEB, 'test/bundler-app');

let work;
let tarball;
let packed;
let browser;

/** Runs npm quietly, offline: nothing here may need the network. */
function npm(args, cwd) {
  return execFileSync('npm', [...args, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_cache: join(work, 'npm-cache'), npm_config_update_notifier: 'false' },
  });
}

before(async () => {
  need(join(WEB, 'pkg/stele_wasm_bg.wasm'), 'run node web/build.mjs first');
  work = mkdtempSync(join(tmpdir(), 'stele-bundler-'));
  const out = JSON.parse(npm(['pack', '--json', '--pack-destination', work], WEB));
  packed = out[0].files.map((f) => f.path);
  tarball = join(work, out[0].filename);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Copies the app to DIR and installs the tarball there, as `npm install ./stele-verifier-*.tgz` would. */
function makeApp(dir) {
  cpSync(APP_SRC, dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'dashboard', private: true, type: 'module' }, null, 2));
  npm(['install', tarball], dir);
  return dir;
}

describe('npm package', () => {
  it('the tarball holds every file its exports map and its modules name, and can be published', T, () => {
    const pkg = JSON.parse(readFileSync(join(WEB, 'package.json'), 'utf8'));
    assert.equal(pkg.private, undefined, 'package.json says private: npm publish would refuse');
    // The licence package.json names, in the tarball (npm packs a LICENSE whatever `files` says).
    assert.equal(pkg.license, 'Apache-2.0');
    assert.ok(packed.includes('LICENSE'), `no LICENSE in the tarball (${packed.join(', ')})`);
    assert.match(readFileSync(join(WEB, 'LICENSE'), 'utf8'), /^\s*Apache License\s+Version 2\.0, January 2004\s/);
    const targets = [];
    const walk = (v) => (typeof v === 'string' ? targets.push(v) : Object.values(v).forEach(walk));
    walk(pkg.exports);
    for (const t of targets) {
      const rel = t.replace(/^\.\//, '');
      if (rel.includes('*')) {
        const re = new RegExp(`^${rel.replace(/[.]/g, '\\.').replace('*', '.+')}$`);
        assert.ok(packed.some((f) => re.test(f)), `exports ${t}: nothing in the tarball matches`);
      } else assert.ok(packed.includes(rel), `exports ${t}: not in the tarball (${packed.join(', ')})`);
    }
    // Every relative import of a packed module is packed too.
    for (const f of packed.filter((p) => p.endsWith('.js'))) {
      // (comments stripped: JSDoc names types as import('./index.js'), which is index.d.ts)
      const src = readFileSync(join(WEB, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
      for (const m of src.matchAll(/(?:from\s+|import\(\s*|new URL\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = join(f, '..', m[1]).replace(/\\/g, '/');
        assert.ok(packed.includes(target), `${f} refers to ${m[1]}, which is not in the tarball`);
      }
    }
  });

  it('a Vite app that imports @stele/verifier and its element verifies exports in Chromium, in workers', T, async () => {
    const app = makeApp(join(work, 'app'));
    // The app's TypeScript against the types the tarball ships (its exports map's "types").
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'esnext.disposable', 'dom', 'dom.iterable'], strict: true, noEmit: true, types: [] },
      include: ['main.ts'],
    }));
    const types = tsc(join(app, 'tsconfig.json'));
    assert.ok(types.ok, `the app does not type-check against the package:\n${types.out}`);
    const { build } = await import('vite');
    await build({ root: app, logLevel: 'warn', configFile: false, build: { outDir: join(app, 'dist'), emptyOutDir: true } });
    const assets = execFileSync('find', ['.', '-type', 'f'], { cwd: join(app, 'dist'), encoding: 'utf8' }).trim().split('\n');
    assert.ok(assets.some((a) => a.endsWith('.wasm')), `no wasm emitted: ${assets.join(', ')}`);
    const { server, url } = await startServer({ root: join(app, 'dist'), port: 0, quiet: true });
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = [];
    const failed = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => ['error', 'warning'].includes(m.type()) && problems.push(`${m.type()}: ${m.text()}`));
    // the context's events include the workers' requests
    context.on('requestfailed', (r) => failed.push(r.url()));
    context.on('response', (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`));
    try {
      await page.goto(url);
      await page.waitForSelector('#out[data-ready]', { state: 'attached', timeout: 30_000 });
      await page.fill('#key', trustedKey());
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      const want = `worker:${Math.max(0, Math.min(cores - 1, 3))}`;
      const run = async (file) => {
        const n = Number((await page.getAttribute('#out', 'data-done')) || 0);
        await page.setInputFiles('#file', file);
        await page.waitForFunction((k) => Number(document.getElementById('out').dataset.done || 0) > k, n, { timeout: 120_000 });
        return page.evaluate(() => ({ ...document.getElementById('out').dataset, text: document.getElementById('out').textContent }));
      };
      const ok = await run(sample('valid.stele'));
      assert.equal(ok.verdict, 'verified', ok.text);
      assert.equal(ok.element, 'verified', ok.text);
      assert.equal(ok.engine, want, 'verified in the worker, with its helpers');
      assert.ok(Number(ok.progress) > 0, 'onProgress was called');
      assert.equal((await page.locator('stele-verifier .word').textContent()).trim(), 'Verified');
      const tampered = listSamples(/^tampered.*\.stele$/)[0];
      const bad = await run(tampered);
      assert.equal(bad.verdict, 'tampered', bad.text);
      assert.equal(bad.element, 'tampered', bad.text);
      const exp = readExpect(tampered);
      if (exp.entry !== undefined) assert.match(bad.text, new RegExp(`at entry ${exp.entry}\\b`), bad.text);
      assert.deepEqual(failed, [], 'requests that failed');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      server.close();
    }
  });
});
