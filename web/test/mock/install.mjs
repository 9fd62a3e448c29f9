// Installs the development mock as web/pkg (only if web/pkg has no real build).
// `node --test web/test/` runs every .mjs under test/: this script is a tool, not a test.
if (process.env.NODE_TEST_CONTEXT) process.exit(0);
import { mkdirSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
const pkg = new URL('../../pkg/', import.meta.url);
if (existsSync(new URL('stele_wasm.js', pkg)) && !process.argv.includes('--force')) {
  console.log('web/pkg already exists; pass --force to overwrite it with the mock');
  process.exit(0);
}
mkdirSync(pkg, { recursive: true });
copyFileSync(new URL('stele_wasm.js', import.meta.url), new URL('stele_wasm.js', pkg));
// The smallest valid wasm module: magic + version.
writeFileSync(new URL('stele_wasm_bg.wasm', pkg), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
console.log('installed the mock verifier in web/pkg');
