#!/usr/bin/env node
// Verification throughput of the page in headless Chromium.
//   node web/bench/bench.mjs EXPORT [--key VKEY | --key-file FILE] [--dist DIR] [--runs N] [--maps] [--shots DIR] [--identity AGE_KEY_FILE] [--query ?PARAMS]
// Prints MB/s (timed by the page itself: data-last-run-ms, from the file
// chosen to the verdict shown), the ratio to a baseline run in the same page
// right after (read the file, SHA-256 it with WebCrypto; once the page's own
// SHA-256 of the file for its evidence is done), the page's peak JS heap (CDP Performance.getMetrics
// JSHeapUsedSize, sampled), and the peak resident memory of the Chromium
// processes (from /proc, summed over the browser's process tree; the worker
// lives in the renderer process). --maps: where the most grown process's
// memory went at its peak, from /proc/PID/smaps: its mappings grouped by
// size (ArrayBuffers of a few MiB each get a mapping of their own, and
// PartitionAlloc's 2 MiB super pages hold the smaller ones; a column of the
// entry store is one mapping). --shots DIR: after the run, screenshots of
// the page (verdict and timeline; the table scrolled to its middle; a search
// for the middle row's target, timed, with the RSS growth while the file is
// read again) into DIR. Uses web/dist (node web/build.mjs first).
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from '../serve.mjs';
import { ARGS, CHROMIUM, DIST as DEFAULT_DIST, SAMPLES } from '../test/helpers.mjs';

function parseArgs(argv) {
  const o = { file: null, key: null, keyFile: join(SAMPLES, 'key.txt'), dist: DEFAULT_DIST, runs: 1, maps: false, shots: null, identity: null, query: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--key') o.key = argv[++i];
    else if (a === '--key-file') o.keyFile = argv[++i];
    else if (a === '--dist') o.dist = resolve(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--maps') o.maps = true;
    else if (a === '--shots') o.shots = resolve(argv[++i]);
    else if (a === '--identity') o.identity = resolve(argv[++i]);
    else if (a === '--query') o.query = argv[++i];
    else if (!a.startsWith('--') && !o.file) o.file = resolve(a);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.file) throw new Error('usage: node web/bench/bench.mjs EXPORT [--key VKEY | --key-file FILE] [--dist DIR] [--runs N] [--maps]');
  if (!o.key) {
    if (!existsSync(o.keyFile)) throw new Error(`no --key and no ${o.keyFile}`);
    o.key = readFileSync(o.keyFile, 'utf8').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  }
  return o;
}

/** RSS in bytes of every descendant of `root`, by pid. */
function treeRss(root) {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(d), ppid);
    } catch {
      // process ended
    }
  }
  const out = new Map();
  for (const pid of parent.keys()) {
    let p = parent.get(pid);
    while (p && p !== root && parent.has(p)) p = parent.get(p);
    if (p !== root) continue;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) out.set(pid, Number(m[1]) * 1024);
    } catch {
      // process ended
    }
  }
  return out;
}

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

/** The mappings of `pid` (/proc/PID/smaps): start address, size, name, resident bytes. */
function mappings(pid) {
  const out = [];
  let cur = null;
  for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) {
      cur = { start: m[1], size: parseInt(m[2], 16) - parseInt(m[1], 16), name: m[3], rss: 0 };
      out.push(cur);
    } else if (cur && l.startsWith('Rss:')) cur.rss = Number(/(\d+)/.exec(l)?.[1] || 0) * 1024;
  }
  return out;
}

/** Growth of `peak` over `before` (mappings by start address), grouped by mapping size and name; the largest groups. */
function mapGrowth(before, peak, top = 8) {
  const was = new Map(before.map((m) => [m.start, m.rss]));
  const groups = new Map();
  for (const m of peak) {
    const key = `${mb(m.size)} ${m.name || '(anonymous)'}`;
    const g = groups.get(key) || { n: 0, grown: 0 };
    g.n++;
    g.grown += m.rss - (was.get(m.start) || 0);
    groups.set(key, g);
  }
  return [...groups].sort((a, b) => b[1].grown - a[1].grown).slice(0, top).map(([k, g]) => `${g.n} x ${k}: +${mb(g.grown)}`);
}

/** "renderer", "gpu-process", "browser", ... from a Chromium process's --type. */
function processKind(pid) {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const m = /--type=([\w-]+)/.exec(cmd);
    return `${m ? m[1] : 'browser'} ${pid}`;
  } catch {
    return `process ${pid}`;
  }
}

/**
 * Screenshots of the page after a run (see --shots), and how long a search
 * for the middle row's target took. `sample` records RSS; growth() is the
 * peak growth so far.
 */
async function shots(page, dir, sample, growth) {
  mkdirSync(dir, { recursive: true });
  const until = async (fn, arg, what) => {
    const t = performance.now();
    for (;;) {
      await sample();
      if (await page.evaluate(fn, arg)) return (performance.now() - t) / 1000;
      if (performance.now() - t > 900_000) throw new Error(`--shots: gave up waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await until(() => !document.getElementById('timeline-caption').textContent.includes('estimated'), null, 'the timeline');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(dir, '1-verdict-timeline.png'), fullPage: true });
  await page.evaluate(() => {
    const s = document.getElementById('vt-scroll');
    s.scrollIntoView();
    s.scrollTop = s.scrollHeight / 2;
  });
  await until(() => {
    const r = [...document.querySelectorAll('.vt-row[data-line]:not([hidden])')];
    return r.length > 5 && r.every((x) => !x.textContent.includes('…'));
  }, null, 'the middle rows');
  await page.screenshot({ path: join(dir, '2-table-middle.png') });
  const target = await page.evaluate(() => document.querySelectorAll('.vt-row[data-line]:not([hidden])')[3].children[4].textContent);
  const before = growth();
  await page.fill('#f-text', target);
  await until(() => document.getElementById('entries-count').dataset.searching === 'true', null, 'the search to start').catch(() => 0);
  const secs = await until(() => !document.getElementById('entries-count').dataset.searching && /match/.test(document.getElementById('entries-count').textContent), null, 'the search');
  await page.locator('#entries-count').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(dir, '3-search.png') });
  const count = (await page.textContent('#entries-count')).trim();
  console.log(`  search for "${target}": ${count} in ${secs.toFixed(1)} s; peak RSS growth ${mb(before)} before it, ${mb(growth())} after; screenshots in ${dir}`);
  await page.fill('#f-text', '');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const size = statSync(o.file).size;
  const { server, url } = await startServer({ root: o.dist, samples: null, port: 0, quiet: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    for (let run = 1; run <= o.runs; run++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Performance.enable');
      await page.goto(url + o.query);
      await page.waitForSelector('html[data-warm]');
      await page.fill('#key', o.key);
      // An auditor key (issue 11): sealed values are opened too.
      if (o.identity) await page.setInputFiles('#auditor-file', o.identity);
      let peakHeap = 0;
      let peakRss = 0;
      let peakProc = 0;
      /** @type {Map<number, number> | null} */
      let baseByPid = null;
      const growthByPid = new Map(); // pid -> peak growth over its RSS before the run (0 for new processes)
      /** @type {Map<number, ReturnType<typeof mappings>>} */
      const mapsBefore = new Map();
      /** @type {Map<number, ReturnType<typeof mappings>>} */
      const mapsAtPeak = new Map();
      const sample = async () => {
        const { metrics } = await cdp.send('Performance.getMetrics');
        const heap = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value || 0;
        peakHeap = Math.max(peakHeap, heap);
        const rss = treeRss(process.pid);
        let sum = 0;
        for (const [pid, v] of rss) {
          sum += v;
          peakProc = Math.max(peakProc, v);
          if (baseByPid) {
            const g = v - (baseByPid.get(pid) || 0);
            if (o.maps && g > (growthByPid.get(pid) ?? -Infinity)) {
              try {
                mapsAtPeak.set(pid, mappings(pid));
              } catch {
                // process ended
              }
            }
            growthByPid.set(pid, Math.max(growthByPid.get(pid) || 0, g));
          }
        }
        peakRss = Math.max(peakRss, sum);
      };
      await sample();
      const baseRss = peakRss;
      baseByPid = treeRss(process.pid);
      if (o.maps) {
        for (const pid of baseByPid.keys()) {
          try {
            mapsBefore.set(pid, mappings(pid));
          } catch {
            // process ended
          }
        }
      }
      const t0 = performance.now();
      await page.setInputFiles('#file', o.file);
      while (!(await page.getAttribute('html', 'data-runs'))) {
        await sample();
        await new Promise((r) => setTimeout(r, 200));
      }
      const outside = (performance.now() - t0) / 1000; // includes up to one 200 ms polling step
      const secs = Number(await page.getAttribute('html', 'data-last-run-ms')) / 1000 || outside;
      await sample();
      const word = (await page.textContent('#verdict-word')).trim();
      const entries = await page.textContent('#entries-count');
      const engine = `${await page.getAttribute('html', 'data-engine')}, ${await page.getAttribute('html', 'data-helpers')} helper(s)`;
      console.log(`run ${run}: ${mb(size)} in ${secs.toFixed(2)} s = ${(size / 1e6 / secs).toFixed(1)} MB/s · verdict ${word} · ${entries} · ${engine} (page clock, from the file chosen to the verdict shown; ${outside.toFixed(2)} s seen by this script)`);
      // The page hashes the file for its evidence once the verdict is shown
      // (evidence.js): the baseline waits for that hash, which would
      // otherwise compete with it for the CPU (and flatter the ratio).
      const hashT = performance.now();
      await page.waitForFunction(() => /SHA-256\s*([0-9a-f]{64}|could not)/.test(document.getElementById('evidence-list')?.textContent || ''), null, { timeout: 0, polling: 500 });
      const hashSecs = (performance.now() - hashT) / 1000;
      // A baseline in the same page and minute (the machine is shared): read
      // the file in 4 MiB slices and SHA-256 each with the browser's WebCrypto.
      const floorSecs = await page.evaluate(async () => {
        const f = document.getElementById('file').files[0];
        const t = performance.now();
        for (let at = 0; at < f.size; at += 4 << 20) {
          await crypto.subtle.digest('SHA-256', await f.slice(at, at + (4 << 20)).arrayBuffer());
        }
        return (performance.now() - t) / 1000;
      });
      console.log(`  baseline: reading + WebCrypto SHA-256 of the same file ${floorSecs.toFixed(2)} s (${(size / 1e6 / floorSecs).toFixed(0)} MB/s), run after the page's own SHA-256 of it for the evidence (${hashSecs.toFixed(1)} s more after the verdict); verify time / baseline time ${(secs / floorSecs).toFixed(2)}`);
      console.log(`  peak page JS heap (JSHeapUsedSize) ${mb(peakHeap)}`);
      if (o.identity) {
        const d = await page.evaluate(() => ({ ...document.documentElement.dataset }));
        console.log(`  sealed values: ${d.sealedOpened} opened (core's count); held by the page after the run: ${d.sealedHeld ?? 'not reported'}; store ${d.store}`);
      }
      console.log(`  peak RSS of Chromium processes ${mb(peakRss)} (before the run ${mb(baseRss)}; largest single process ${mb(peakProc)})`);
      const grew = [...growthByPid].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([pid, g]) => `${processKind(pid)} +${mb(g)}`);
      console.log(`  RSS growth during the run: ${mb(peakRss - baseRss)} (goal: at most 64 MB); most grown: ${grew.join(', ')}`);
      if (o.maps) {
        const [pid] = [...growthByPid].sort((a, b) => b[1] - a[1])[0] || [];
        const peak = mapsAtPeak.get(pid);
        if (peak) console.log(`  ${processKind(pid)} at its peak, mappings grown most (count x size name: growth):\n    ${mapGrowth(mapsBefore.get(pid) || [], peak).join('\n    ')}`);
      }
      if (o.shots) await shots(page, o.shots, sample, () => peakRss - baseRss);
      await context.close();
    }
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
