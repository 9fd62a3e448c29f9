#!/usr/bin/env node
// Where the CPU of opening sealed values in the page goes (issue 11): the
// CPU seconds of Chromium's threads, by group, while the page verifies an
// export with the auditor key (and, with --plain, without it), for one or
// more builds of the page interleaved in one run (A/B on a shared machine).
//   node web/bench/sealed-threads.mjs EXPORT --key-file VKEY_FILE --identity AGE_KEY_FILE [--dist DIR]... [--runs N] [--plain] [--settle MS]
// Groups (from /proc, user + system time, each run from the file chosen to
// the verdict shown):
//   main      the page's main thread
//   verifier  the verification's worker and its helper (the renderer's
//             first two worker threads: both start with the page)
//   pass      the opening pass's workers (the renderer's other worker
//             threads, and threads that ended during the run)
//   pool      the renderer's thread pool (V8's optimizing compilers, wasm
//             top-tier compilation, garbage collection)
//   browser   the browser process (among others, reading the file)
//   other     the GPU, network and other processes
// --settle MS: as web/bench/sealed.mjs's (the time between the key and the file).
// Make an export as web/bench/sealed.mjs says.
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../serve.mjs';
import { ARGS, CHROMIUM, DIST as DEFAULT_DIST } from '../test/helpers.mjs';

function parseArgs(argv) {
  const o = { file: null, keyFile: null, identity: null, dists: [], runs: 5, plain: false, settle: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--key-file') o.keyFile = resolve(argv[++i]);
    else if (a === '--identity') o.identity = resolve(argv[++i]);
    else if (a === '--dist') o.dists.push(resolve(argv[++i]));
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--plain') o.plain = true;
    else if (a === '--settle') o.settle = Number(argv[++i]);
    else if (!a.startsWith('--') && !o.file) o.file = resolve(a);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.file || !o.keyFile || !o.identity) throw new Error('usage: node web/bench/sealed-threads.mjs EXPORT --key-file VKEY_FILE --identity AGE_KEY_FILE [--dist DIR]... [--runs N] [--plain] [--settle MS]');
  if (!o.dists.length) o.dists.push(DEFAULT_DIST);
  o.key = readFileSync(o.keyFile, 'utf8').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  return o;
}

const TICKS = 100; // USER_HZ: /proc counts CPU time in 1/100 s on Linux
const GROUPS = ['main', 'verifier', 'pass', 'pool', 'browser', 'other'];

/** CPU ms of each process descended from this one and of each of its threads. */
function snapshot() {
  const parent = new Map();
  const cmd = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      cmd.set(Number(d), readFileSync(`/proc/${d}/cmdline`, 'utf8'));
    } catch {
      // process ended
    }
  }
  const cpu = (/** @type {string} */ stat) => {
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS;
  };
  /** @type {Map<number, {type: string, cpu: number, threads: Map<number, {name: string, cpu: number}>}>} */
  const procs = new Map();
  for (const [pid, line] of cmd) {
    let p = parent.get(pid);
    while (p && p !== process.pid && parent.has(p)) p = parent.get(p);
    if (p !== process.pid) continue;
    try {
      const threads = new Map();
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        try {
          const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
          threads.set(Number(t), { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), cpu: cpu(stat) });
        } catch {
          // thread ended
        }
      }
      procs.set(pid, { type: (line.match(/--type=([\w-]+)/) || [null, 'browser'])[1], cpu: cpu(readFileSync(`/proc/${pid}/stat`, 'utf8')), threads });
    } catch {
      // process ended
    }
  }
  return procs;
}

/** CPU ms by group between two snapshots. */
function groups(a, b) {
  const g = Object.fromEntries(GROUPS.map((k) => [k, 0]));
  for (const [pid, p] of b) {
    const before = a.get(pid);
    let live = 0;
    const workers = [...p.threads].filter(([, t]) => t.name.startsWith('DedicatedWorker')).map(([tid]) => tid).sort((x, y) => x - y);
    for (const [tid, t] of p.threads) {
      const d = t.cpu - (before?.threads.get(tid)?.cpu ?? 0);
      live += d;
      if (p.type !== 'renderer') g[p.type === 'browser' ? 'browser' : 'other'] += d;
      else if (t.name.startsWith('DedicatedWorker')) g[workers.indexOf(tid) < 2 ? 'verifier' : 'pass'] += d;
      else if (t.name.startsWith('ThreadPool')) g.pool += d;
      else if (tid === pid) g.main += d;
      else g.other += d;
    }
    // Threads that ended meanwhile: in a renderer, the pass's workers (ended when not kept).
    const ended = p.cpu - (before?.cpu ?? 0) - live;
    if (ended > 0) g[p.type === 'renderer' ? 'pass' : p.type === 'browser' ? 'browser' : 'other'] += ended;
  }
  g.total = GROUPS.reduce((s, k) => s + g[k], 0);
  return g;
}

async function timeOne(browser, url, o, withIdentity) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForSelector('html[data-warm]');
    await page.fill('#key', o.key);
    if (withIdentity) await page.setInputFiles('#auditor-file', o.identity);
    if (o.settle > 0) await page.waitForTimeout(o.settle);
    const s0 = snapshot();
    await page.setInputFiles('#file', o.file);
    await page.waitForSelector('html[data-runs]', { timeout: 600_000 });
    const g = groups(s0, snapshot());
    g.wall = Number(await page.getAttribute('html', 'data-last-run-ms'));
    g.opened = withIdentity ? Number(await page.getAttribute('html', 'data-sealed-opened')) : 0;
    return g;
  } finally {
    await context.close();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const servers = await Promise.all(o.dists.map((root) => startServer({ root, samples: null, port: 0, quiet: true })));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  /** @type {Map<string, any[]>} */
  const results = new Map();
  const cols = ['wall', 'total', ...GROUPS];
  try {
    for (let run = 1; run <= o.runs; run++) {
      const order = o.dists.map((_, i) => i);
      if (run % 2 === 0) order.reverse();
      for (const i of order) {
        for (const withIdentity of o.plain ? (run % 2 ? [true, false] : [false, true]) : [true]) {
          const g = await timeOne(browser, servers[i].url, o, withIdentity);
          const name = `${o.dists.length > 1 ? `${o.dists[i]} ` : ''}${withIdentity ? 'key' : 'no key'}`;
          if (!results.has(name)) results.set(name, []);
          results.get(name)?.push(g);
          console.log(`run ${run} ${name}: ${cols.map((k) => `${k} ${Math.round(g[k])}`).join(' ')}${withIdentity ? ` opened ${g.opened}` : ''} (load ${load()})`);
        }
      }
    }
  } finally {
    await browser.close();
    servers.forEach((s) => s.server.close());
  }
  console.log('medians, ms (wall: the page\'s own time; the rest CPU):');
  for (const [name, gs] of results) console.log(`  ${name}: ${cols.map((k) => `${k} ${Math.round(median(gs.map((g) => g[k])))}`).join(' ')}`);
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
