// What a dashboard developer writes: the package from npm, bundled by Vite.
// web/test/bundler.test.mjs packs web/, installs the tarball next to this file,
// builds it with Vite and drives it in Chromium; tsc checks it against the
// package's types (web/test/types.test.mjs).
import { init, parseVerifierKey, verifyFile, type EngineInfo, type Report } from '@stele/verifier';
import '@stele/verifier/element';

const out = document.getElementById('out') as HTMLPreElement;
const fileInput = document.getElementById('file') as HTMLInputElement;
const keyInput = document.getElementById('key') as HTMLInputElement;
const element = document.querySelector('stele-verifier');
if (!element) throw new Error('no <stele-verifier> on the page');

async function check(file: File): Promise<void> {
  const keys = keyInput.value.split(/\s+/).filter(Boolean);
  const named = keys.map((k) => parseVerifierKey(k).name);
  let engine: EngineInfo | null = null;
  let progressCalls = 0;
  const report: Report = await verifyFile(file, {
    keys,
    onEngine: (e) => (engine = e),
    onProgress: () => progressCalls++,
  });
  element!.setAttribute('keys', keys.join(' '));
  const shown = await element!.verify(file);
  const failure = report.failures[0];
  out.textContent = `${report.verdict}: ${report.entries} entries, key ${named.join(', ')}${failure ? `; first failure ${failure.code} at entry ${failure.entry}` : ''}`;
  Object.assign(out.dataset, {
    verdict: report.verdict,
    element: shown.verdict,
    engine: engine ? `${(engine as EngineInfo).engine}:${(engine as EngineInfo).helpers}` : 'none',
    progress: String(progressCalls),
    done: String(Number(out.dataset.done || 0) + 1),
  });
}

fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (!file) return;
  check(file).catch((e: unknown) => {
    out.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
    out.dataset.done = String(Number(out.dataset.done || 0) + 1);
  });
});

init().then(
  () => (out.dataset.ready = 'true'),
  (e: unknown) => (out.textContent = `could not load the verifier: ${String(e)}`),
);
