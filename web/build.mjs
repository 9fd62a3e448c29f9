#!/usr/bin/env node
// Builds the verifier page.
//   node web/build.mjs [--wasm PATH] [--live-wasm PATH] [--no-bindgen] [--out DIR]
// 1. wasm-bindgen --target web for the verifier module (stele_wasm) and the
//    live-mode module (stele_wasm_live, loaded only by src/live.js); the
//    PATHs default to the cargo wasm-release output
// 2. wasm-opt -Oz from npm binaryen, in place in web/pkg
// 3. prints the verifier module's sizes against the budget (<= 150 KB after
//    wasm-opt, <= 64 KB gzipped), and the live module's size
// 4. writes DIR (default web/dist): index.html, src/, pkg/
// 5. writes DIR/stele-verify.html: one self-contained file (wasm as base64,
//    scripts and styles inline, CSP with their sha256 hashes) for file:// use.
// --no-bindgen skips steps 1-2 and uses web/pkg as it is (e.g. the test mock).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const WEB = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(WEB, '..');
const PKG = join(WEB, 'pkg');
const BUDGET_OPT = 150 * 1024;
const BUDGET_GZ = 64 * 1024;

function parseArgs(argv) {
  const target = join(REPO, 'target/wasm32-unknown-unknown/wasm-release');
  const o = { wasm: join(target, 'stele_wasm.wasm'), liveWasm: join(target, 'stele_wasm_live.wasm'), bindgen: true, out: join(WEB, 'dist') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--wasm') o.wasm = resolve(argv[++i]);
    else if (a === '--live-wasm') o.liveWasm = resolve(argv[++i]);
    else if (a === '--out') o.out = resolve(argv[++i]);
    else if (a === '--no-bindgen') o.bindgen = false;
    else throw new Error(`unknown argument ${a} (expected --wasm PATH, --live-wasm PATH, --out DIR, --no-bindgen)`);
  }
  return o;
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

function runBindgen(wasm, name) {
  if (!existsSync(wasm)) {
    throw new Error(`${wasm} does not exist: run cargo build -p stele-wasm -p stele-wasm-live --profile wasm-release --target wasm32-unknown-unknown first, or pass --wasm / --live-wasm PATH`);
  }
  try {
    execFileSync('wasm-bindgen', ['--target', 'web', '--out-dir', PKG, wasm], { stdio: 'inherit' });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error('wasm-bindgen is not on PATH (cargo install wasm-bindgen-cli --version 0.2.130)');
    throw e;
  }
  const bg = join(PKG, `${name}_bg.wasm`);
  const raw = statSync(bg).size;
  const wasmOpt = join(WEB, 'node_modules/.bin/wasm-opt');
  if (!existsSync(wasmOpt)) throw new Error('wasm-opt not found: run npm ci in web/');
  const tmp = `${bg}.opt`;
  execFileSync(wasmOpt, [
    '-Oz', '--strip-debug', '--strip-producers',
    '--enable-bulk-memory', '--enable-bulk-memory-opt', '--enable-nontrapping-float-to-int', '--enable-sign-ext',
    '--enable-mutable-globals', '--enable-reference-types', '--enable-multivalue', '--enable-simd',
    bg, '-o', tmp,
  ], { stdio: 'inherit' });
  cpSync(tmp, bg);
  rmSync(tmp);
  return raw;
}

function reportSizes(raw) {
  const bytes = readFileSync(join(PKG, 'stele_wasm_bg.wasm'));
  const opt = bytes.length;
  const gz = gzipSync(bytes, { level: 9 }).length;
  const okOpt = opt <= BUDGET_OPT;
  const okGz = gz <= BUDGET_GZ;
  console.log('stele_wasm_bg.wasm sizes:');
  if (raw != null) console.log(`  raw (wasm-bindgen)  ${kb(raw).padStart(10)}`);
  console.log(`  after wasm-opt      ${kb(opt).padStart(10)}   budget ${kb(BUDGET_OPT)}: ${okOpt ? 'within' : 'OVER'}`);
  console.log(`  gzipped             ${kb(gz).padStart(10)}   budget ${kb(BUDGET_GZ)}: ${okGz ? 'within' : 'OVER'}`);
  console.log(okOpt && okGz ? 'size budget: within' : 'size budget: OVER');
  return { raw, opt, gz, within: okOpt && okGz };
}

// ---- a tiny bundler for our own ES modules ---------------------------------------
// It supports exactly the forms this package (and wasm-bindgen's web target)
// use: single-line `import {a, b as c} from './x.js'`, `import d, {a} from`,
// `export function|async function|class|const|let`, `export {a, b as c}`,
// `export {a} from './x.js'` and `export default IDENT`.

function bundle(entry) {
  const order = [];
  const seen = new Map();
  const visit = (file) => {
    if (seen.has(file)) return seen.get(file);
    const id = `__m${seen.size}`;
    seen.set(file, id);
    let src = readFileSync(file, 'utf8');
    const head = [];
    const exported = [];
    const dep = (spec) => {
      if (!spec.startsWith('.')) throw new Error(`${relative(WEB, file)}: bare import ${spec} is not supported`);
      return visit(resolve(dirname(file), spec));
    };
    src = src.replace(/^import\s+([^;]*?)\s+from\s+['"]([^'"]+)['"];?[ \t]*$/gm, (_, what, spec) => {
      const m = dep(spec);
      const mm = /^(?:([\w$]+)\s*,?\s*)?(?:\{([^}]*)\})?$/.exec(what.trim());
      const star = /^\*\s+as\s+([\w$]+)$/.exec(what.trim());
      if (star) head.push(`const ${star[1]} = ${m};`);
      else if (mm) {
        if (mm[1]) head.push(`const ${mm[1]} = ${m}.default;`);
        if (mm[2]) head.push(`const { ${mm[2].replace(/([\w$]+)\s+as\s+([\w$]+)/g, '$1: $2')} } = ${m};`);
      } else throw new Error(`${relative(WEB, file)}: unsupported import ${what}`);
      return '';
    });
    if (/^\s*import\s/m.test(src)) throw new Error(`${relative(WEB, file)}: unsupported import form`);
    src = src.replace(/^export\s+\{([^}]*)\}\s+from\s+['"]([^'"]+)['"];?[ \t]*$/gm, (_, names, spec) => {
      const m = dep(spec);
      for (const n of names.split(',').map((s) => s.trim()).filter(Boolean)) {
        const [a, b = a] = n.split(/\s+as\s+/);
        exported.push(`${b}: ${m}.${a}`);
      }
      return '';
    });
    src = src.replace(/^export\s+\{([^}]*)\};?[ \t]*$/gm, (_, names) => {
      for (const n of names.split(',').map((s) => s.trim()).filter(Boolean)) {
        const [a, b = a] = n.split(/\s+as\s+/);
        exported.push(`${b}: ${a}`);
      }
      return '';
    });
    src = src.replace(/^export\s+default\s+([\w$]+);?[ \t]*$/gm, (_, n) => {
      exported.push(`default: ${n}`);
      return '';
    });
    src = src.replace(/^export\s+default\s+((?:async\s+)?function\*?|class)\s+([\w$]+)/gm, (_, kw, n) => {
      exported.push(`default: ${n}`);
      return `${kw} ${n}`;
    });
    src = src.replace(/^export\s+((?:async\s+)?function\*?|class|const|let|var)\s+([\w$]+)/gm, (_, kw, n) => {
      exported.push(n);
      return `${kw} ${n}`;
    });
    if (/^\s*export\s/m.test(src)) throw new Error(`${relative(WEB, file)}: unsupported export form`);
    order.push(`const ${id} = (() => {\n${head.join('\n')}\n${src}\nreturn { ${exported.join(', ')} };\n})();`);
    return id;
  };
  visit(entry);
  return order.join('\n');
}

const sha256 = (s) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

function singleFile(outDir) {
  const html = readFileSync(join(WEB, 'index.html'), 'utf8');
  const css = readFileSync(join(WEB, 'src/style.css'), 'utf8');
  const wasm = readFileSync(join(PKG, 'stele_wasm_bg.wasm'));
  const workerSrc = bundle(join(WEB, 'src/worker.js'));
  const appSrc = bundle(join(WEB, 'src/app.js'));
  const script = [
    '// Stele verifier, single-file build: everything is inline, nothing is fetched.',
    `const WORKER_SOURCE = ${JSON.stringify(workerSrc)};`,
    `const WASM_BASE64 = ${JSON.stringify(wasm.toString('base64'))};`,
    'let workerUrl = null;',
    'globalThis.STELE_EMBED = {',
    '  wasm: Uint8Array.from(atob(WASM_BASE64), (c) => c.charCodeAt(0)),',
    '  workerFactory: () => {',
    "    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));",
    '    return new Worker(workerUrl); // classic: a module worker from a blob: URL fails on file:// (opaque origin)',
    '  },',
    '};',
    appSrc,
  ].join('\n');
  if (/<\/(script|style)/i.test(script) || /<\/style/i.test(css)) throw new Error('inline content contains a closing tag');
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)} 'wasm-unsafe-eval'`,
    'worker-src blob:',
    `style-src ${sha256(css)}`,
    'img-src data:',
    "connect-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  let out = html
    .replace(/<meta http-equiv="Content-Security-Policy" content="[^"]*">/, () => `<meta http-equiv="Content-Security-Policy" content="${csp}">`)
    .replace('<link rel="stylesheet" href="src/style.css">', () => `<style>${css}</style>`)
    .replace('<script type="module" src="src/app.js"></script>', () => `<script type="module">${script}</script>`);
  if (out.includes('src/app.js') || out.includes('src/style.css') || !out.includes(sha256(script).slice(8, 20))) throw new Error('single-file: index.html did not have the expected tags');
  writeFileSync(join(outDir, 'stele-verify.html'), out);
  return out.length;
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  let raw = null;
  if (o.bindgen) {
    rmSync(PKG, { recursive: true, force: true });
    raw = runBindgen(o.wasm, 'stele_wasm');
    runBindgen(o.liveWasm, 'stele_wasm_live');
  }
  if (!existsSync(join(PKG, 'stele_wasm.js'))) throw new Error('web/pkg/stele_wasm.js is missing');
  const sizes = reportSizes(raw);
  const live = join(PKG, 'stele_wasm_live_bg.wasm');
  if (existsSync(live)) {
    const bytes = readFileSync(live);
    console.log(`stele_wasm_live_bg.wasm (live mode only): ${kb(bytes.length)}, ${kb(gzipSync(bytes, { level: 9 }).length)} gzipped`);
  }
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(join(o.out, 'src'), { recursive: true });
  cpSync(join(WEB, 'index.html'), join(o.out, 'index.html'));
  cpSync(join(WEB, 'element.html'), join(o.out, 'element.html'));
  for (const f of readdirSync(join(WEB, 'src'))) cpSync(join(WEB, 'src', f), join(o.out, 'src', f));
  mkdirSync(join(o.out, 'pkg'));
  for (const f of readdirSync(PKG)) if (/\.(js|wasm|d\.ts)$/.test(f)) cpSync(join(PKG, f), join(o.out, 'pkg', f));
  const single = singleFile(o.out);
  console.log(`wrote ${relative(process.cwd(), o.out) || '.'}/ (index.html, src/, pkg/) and stele-verify.html (${kb(single)})`);
  return sizes;
}

try {
  main();
} catch (e) {
  console.error(`build: ${e.message}`);
  process.exit(1);
}
