// The Content-Security-Policy has one copy, web/csp.txt: the static server
// sends it, `stele serve` compiles it in, and the built pages carry it (less
// frame-ancestors, which a meta tag cannot hold). No browser; the built pages
// need node web/build.mjs first.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, REPO, WEB, need } from './helpers.mjs';
import { CSP } from '../serve.mjs';
import { cspWith, readCsp } from '../build.mjs';

const metaOf = (html) => /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html)?.[1];

it('csp.txt is the policy the server sends and the built pages carry', () => {
  const policy = readFileSync(join(WEB, 'csp.txt'), 'utf8').trim();
  assert.match(policy, /^default-src 'none'; .*script-src 'self' 'wasm-unsafe-eval'/);
  assert.equal(CSP, policy);
  assert.equal(readCsp(), policy);
  for (const page of ['index.html', 'element.html']) {
    const html = readFileSync(need(join(DIST, page), 'run node web/build.mjs first'), 'utf8');
    assert.equal(metaOf(html), policy.replace(/;\s*frame-ancestors [^;]*/, ''), `${page}'s meta tag`);
  }
  // the single file: the same policy with its inline script and style by hash, workers from blob:
  const single = metaOf(readFileSync(join(DIST, 'stele-verify.html'), 'utf8'));
  assert.match(single, /^default-src 'none'; script-src 'sha256-[^']+' 'wasm-unsafe-eval'; worker-src blob:; style-src 'sha256-[^']+'; img-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'$/);
  assert.equal(cspWith("a 'x'; b 'y'; frame-ancestors 'none'", { b: null, c: 'z' }), "a 'x'; c z");
});

it('no other file spells the policy out', () => {
  // git grep: the tracked sources (not dist/, node_modules/ or target/)
  const hits = execFileSync('git', ['grep', '-l', '-e', "default-src 'none'", '--', '.', ':!*.md', ':!web/test/*'], { cwd: REPO, encoding: 'utf8' })
    .trim().split('\n').filter(Boolean);
  assert.deepEqual(hits, ['web/csp.txt']);
  // stele serve (wherever its static handler lives in writer/src) compiles csp.txt in
  const rust = execFileSync('git', ['grep', '-n', '-e', 'include_str!(.*web/csp\\.txt")', '--', 'writer/src'], { cwd: REPO, encoding: 'utf8' });
  assert.match(rust, /writer\/src\/.*\.rs:\d+:.*CSP/, 'stele serve does not include web/csp.txt');
});
