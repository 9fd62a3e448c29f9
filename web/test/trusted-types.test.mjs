// Trusted Types: a host page whose CSP has `require-trusted-types-for
// 'script'` and names the package's policy (`trusted-types stele-verifier`,
// web/README.md "Embedding") verifies in the package's workers, the
// verification's, its helpers' and the sealed-field pass's, with no
// violation; `new Worker(url)` from a plain URL was blocked there, and
// reported, and verification ran on the main thread. Headless Chromium
// against web/dist, a page of its own importing src/verifier.js.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, browserAndServer, trustedKey } from './helpers.mjs';

const VEC = join(REPO, 'tests/vectors/sealed');
const SEALED_KEY = /^key:\s*(\S+)/m.exec(readFileSync(join(VEC, 'sealed-valid.expect'), 'utf8'))[1];
const AUDITOR = readFileSync(join(VEC, 'auditor.key'), 'utf8');
const T = { timeout: 180_000 };
const env = browserAndServer();

const CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; base-uri 'none'; require-trusted-types-for 'script'";

/** Opens a page with CSP `csp` that imports src/verifier.js; its violations are in window.violations. */
async function open(csp) {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
  const js = `window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.sourceFile.replace(/^.*\\//, '') + ':' + e.lineNumber));
window.V = await import('./src/verifier.js');`;
  await page.route(`${env.url}tt.html`, (r) => r.fulfill({ status: 200, contentType: 'text/html', headers: { 'content-security-policy': csp }, body: '<!doctype html><meta charset="utf-8"><title>t</title><script type="module" src="tt.js"></script>' }));
  await page.route(`${env.url}tt.js`, (r) => r.fulfill({ status: 200, contentType: 'text/javascript', body: js }));
  await page.goto(`${env.url}tt.html`);
  await page.waitForFunction(() => 'V' in window);
  return { context, page, problems };
}

describe('Trusted Types', { timeout: 600_000 }, () => {
  it("trusted-types stele-verifier: verified in the workers, no violation", T, async () => {
    const { context, page, problems } = await open(`${CSP}; trusted-types stele-verifier`);
    try {
      const sealed = readFileSync(join(VEC, 'sealed-valid.stele'), 'utf8');
      const r = await page.evaluate(async ({ key, sealedKey, identity, sealed }) => {
        let engine;
        const plain = await window.V.verifyFile(await (await fetch('samples/valid.stele')).blob(), { keys: [key], onEngine: (e) => (engine = e.engine) });
        // the sealed-field pass: in its workers when they start (sealed.js), else on this thread
        const opened = await window.V.verifyFile(new Blob([sealed]), { keys: [sealedKey], identity });
        // The policy passes the package's worker scripts only; a bundle's chunk (not the package's file) gets none.
        const { trustedWorkerURL } = await import('./src/trusted.js');
        const from = new URL('src/verifier.js', location.href).href;
        const worker = trustedWorkerURL('worker.js', from, 'verifier.js');
        let other;
        try {
          other = String(trustedWorkerURL('app.js', from, 'verifier.js'));
        } catch (e) {
          other = e.message;
        }
        const chunk = trustedWorkerURL('worker.js', new URL('assets/index-1a2b.js', location.href).href, 'verifier.js');
        return {
          plain: plain.verdict, engine, opened: `${opened.verdict} ${opened.sealed_counts?.opened}`,
          worker: trustedTypes.isScriptURL(worker) && String(worker) === new URL('src/worker.js', location.href).href,
          other, chunk, violations: window.violations,
        };
      }, { key: trustedKey(), sealedKey: SEALED_KEY, identity: AUDITOR, sealed });
      assert.match(r.other, /^stele-verifier policy: \S+\/src\/app\.js is not a worker script of @stele\/verifier$/);
      assert.deepEqual({ ...r, other: null }, { plain: 'verified', engine: 'worker', opened: 'verified 5', worker: true, other: null, chunk: null, violations: [] });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it("trusted-types 'none' (no policy allowed): verified on the main thread, as before", T, async () => {
    const { context, page } = await open(`${CSP}; trusted-types 'none'`);
    try {
      const r = await page.evaluate(async (key) => {
        let engine;
        const plain = await window.V.verifyFile(await (await fetch('samples/valid.stele')).blob(), { keys: [key], onEngine: (e) => (engine = e.engine) });
        return { plain: plain.verdict, engine };
      }, trustedKey());
      assert.deepEqual(r, { plain: 'verified', engine: 'main' });
    } finally {
      await context.close();
    }
  });
});

