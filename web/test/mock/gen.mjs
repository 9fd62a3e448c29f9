// Writes mock-format samples: node web/test/mock/gen.mjs DIR [entries]
// `node --test web/test/` runs every .mjs under test/: this script is a tool, not a test.
if (process.env.NODE_TEST_CONTEXT) process.exit(0);
import { mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
const dir = process.argv[2] || '/tmp/mock-samples';
const n = Number(process.argv[3] || 2000);
mkdirSync(dir, { recursive: true });
const actors = ['alice@example.com', 'bob@example.com', 'ci-bot', 'carol@example.com'];
const actions = ['login', 'logout', 'read', 'update', 'delete', 'grant'];
function line(i, extra = {}) {
  const t = Date.UTC(2026, 10, 26, 8) + i * 1000 * (i % 500 < 400 ? 3 : 0.2) + (i > n / 2 ? 3600e3 : 0);
  const ts = new Date(t).toISOString().replace('Z', '000Z');
  return JSON.stringify({ seq: i, ts, event: { type: 'audit', actor: actors[i % 4], action: actions[i % 6], target: `doc/${i % 97}`, outcome: i % 13 ? 'success' : 'denied', ...extra }, prev: 'x' }) + '\n';
}
let s = '';
for (let i = 0; i < n; i++) {
  s += line(i);
  if (i % 500 === 499) s += JSON.stringify({ type: 'checkpoint', size: i + 1 }) + '\n';
}
writeFileSync(`${dir}/valid.stele`, s);
writeFileSync(`${dir}/tampered-prev.stele`, s.replace(line(1234), line(1234, { note: 'TAMPERED' })));
writeFileSync(`${dir}/tampered-prev.stele.expect`, 'expect: failed\nentry: 1234\ncode: prev_mismatch\n');
writeFileSync(`${dir}/tampered-late.stele`, s.replace(line(n - 3), line(n - 3, { note: 'TAMPERED' })));
writeFileSync(`${dir}/tampered-late.stele.expect`, `expect: failed\nentry: ${n - 3}\ncode: prev_mismatch\n`);
writeFileSync(`${dir}/key.txt`, 'good+1a2b3c4d+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n');
let x = '';
for (let i = 0; i < 20; i++) x += line(i, i === 5 ? { actor: '<script>alert(1)</script>', target: '<img src=x onerror=alert(2)>', link: 'javascript:alert(3)' } : {});
writeFileSync(`${dir}/xss.stele`, x);
console.log('wrote', dir);

if (process.argv.includes('--large')) {
  // ~100 MB: the same shape, many more entries
  const out = createWriteStream(`${dir}/large.stele`);
  let buf = '';
  for (let i = 0; i < 620000; i++) {
    buf += line(i);
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise((r) => out.once('drain', r));
      buf = '';
    }
  }
  out.end(buf);
  await new Promise((r) => out.on('finish', r));
  console.log('wrote large.stele');
}
