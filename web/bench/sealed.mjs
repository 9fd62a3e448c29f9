#!/usr/bin/env node
// Opening sealed values in the page (issue 11) beside verifying the same
// export without an auditor key, in headless Chromium, in one run.
//   node web/bench/sealed.mjs EXPORT --key-file VKEY_FILE --identity AGE_KEY_FILE [--dist DIR] [--runs N] [--settle MS]
// Each run verifies the file in a fresh page twice, without and with the
// auditor key (the order alternates between runs, since the machine is
// shared), timed by the page itself (data-last-run-ms: from the file chosen
// to the verdict shown). Prints each pair, the medians and their ratio. The
// issue's target: with the key at most 1.5 times the time without. Beside
// each time, the CPU seconds the Chromium processes used meanwhile (from
// /proc, all their threads): on a shared machine a run with more threads
// takes a larger share of the cores, which the times alone hide.
// --settle MS: the time left between giving the auditor key and choosing
// the file (default 0: chosen at once), as an auditor takes to pick the
// file; the page prepares the sealed module meanwhile (compiled, its
// workers started, its hot paths warmed up), as it prepares the verifier
// when it loads (the runs start after html[data-warm]).
// Any export revealed to the identity works; one with 100k sealed values:
//   age-keygen -o aud.key; stele init L --origin bench.example/s --seal /actor/email --seal /ip
//   stele auditor add L "$(age-keygen -y aud.key)"
//   python3 -c 'import json
//   for i in range(50000): print(json.dumps({"action": "login", "actor": {"email": f"user{i%1000}@example.com", "id": f"u{i%1000}"}, "ip": f"192.0.2.{i%250}", "outcome": "success", "target": f"doc/{i}"}))' | stele append L
//   stele export L -o sealed.stele --reveal-to "$(age-keygen -y aud.key)"; stele key L > vkey
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../serve.mjs';
import { ARGS, CHROMIUM, DIST as DEFAULT_DIST } from '../test/helpers.mjs';

function parseArgs(argv) {
  const o = { file: null, keyFile: null, identity: null, dist: DEFAULT_DIST, runs: 3, settle: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--key-file') o.keyFile = resolve(argv[++i]);
    else if (a === '--identity') o.identity = resolve(argv[++i]);
    else if (a === '--dist') o.dist = resolve(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--settle') o.settle = Number(argv[++i]);
    else if (!a.startsWith('--') && !o.file) o.file = resolve(a);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.file || !o.keyFile || !o.identity) throw new Error('usage: node web/bench/sealed.mjs EXPORT --key-file VKEY_FILE --identity AGE_KEY_FILE [--dist DIR] [--runs N] [--settle MS]');
  o.key = readFileSync(o.keyFile, 'utf8').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  return o;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const TICKS = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux

/** CPU seconds (user + system, all threads) used so far by the descendants of this process. */
function treeCpu() {
  const parent = new Map();
  const cpu = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      cpu.set(Number(d), (Number(f[11]) + Number(f[12])) / TICKS);
    } catch {
      // process ended
    }
  }
  let sum = 0;
  for (const [pid, c] of cpu) {
    let p = parent.get(pid);
    while (p && p !== process.pid && parent.has(p)) p = parent.get(p);
    if (p === process.pid) sum += c;
  }
  return sum;
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
    const cpu0 = treeCpu();
    await page.setInputFiles('#file', o.file);
    await page.waitForSelector('html[data-runs]', { timeout: 600_000 });
    const cpu = treeCpu() - cpu0;
    const secs = Number(await page.getAttribute('html', 'data-last-run-ms')) / 1000;
    const word = (await page.textContent('#verdict-word')).trim();
    const opened = withIdentity ? await page.getAttribute('html', 'data-sealed-opened') : null;
    return { secs, cpu, word, opened };
  } finally {
    await context.close();
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const size = statSync(o.file).size;
  const { server, url } = await startServer({ root: o.dist, samples: null, port: 0, quiet: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const plain = [];
  const sealed = [];
  const cpu = { plain: [], sealed: [] };
  try {
    for (let run = 1; run <= o.runs; run++) {
      const order = run % 2 ? [false, true] : [true, false];
      for (const withIdentity of order) {
        const r = await timeOne(browser, url, o, withIdentity);
        (withIdentity ? sealed : plain).push(r.secs);
        cpu[withIdentity ? 'sealed' : 'plain'].push(r.cpu);
        console.log(`run ${run} ${withIdentity ? 'with the auditor key   ' : 'without an auditor key'}: ${r.secs.toFixed(2)} s (CPU ${r.cpu.toFixed(2)} s) · verdict ${r.word}${r.opened != null ? ` · ${r.opened} values opened` : ''}`);
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
  const p = median(plain);
  const s = median(sealed);
  console.log(`${(size / 1e6).toFixed(1)} MB export; median without the key ${p.toFixed(2)} s, with it ${s.toFixed(2)} s`);
  console.log(`ratio (with / without) ${(s / p).toFixed(2)} (target <= 1.50)`);
  const [cp, cs] = [median(cpu.plain), median(cpu.sealed)];
  console.log(`CPU of the Chromium processes: median without the key ${cp.toFixed(2)} s, with it ${cs.toFixed(2)} s, ratio ${(cs / cp).toFixed(2)}`);
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
