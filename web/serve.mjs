#!/usr/bin/env node
// Static server for the verifier page and sample exports. No dependencies.
//   node web/serve.mjs --root web/dist --samples target/samples --port 8080 --host 127.0.0.1
// Serves ROOT at /, and the files of SAMPLES at /samples/ (plus a generated
// /samples/index.json), with the page's Content-Security-Policy as a header.
import { createServer } from 'node:http';
import { closeSync, createReadStream, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { resolve, join, extname, sep } from 'node:path';

/** The page's Content-Security-Policy: csp.txt, its one copy (build.mjs says who else uses it). */
export const CSP = readFileSync(new URL('./csp.txt', import.meta.url), 'utf8').trim();

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

function parseArgs(argv) {
  const o = { root: 'web/dist', samples: null, port: 8080, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o)) throw new Error(`unknown option ${argv[i]} (expected --root, --samples, --port, --host)`);
    o[k] = argv[++i];
  }
  o.port = Number(o.port);
  return o;
}

/** Resolves a URL path inside base, or null if it escapes base. */
function inside(base, urlPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (p.includes('\0')) return null;
  const full = resolve(base, '.' + (p.startsWith('/') ? p : '/' + p));
  return full === base || full.startsWith(base + sep) ? full : null;
}

/** Sample files that may be served: exports, proofs, expectations, verifier keys. */
export function isSampleName(name) {
  return /^[\w.-]+\.(stele|tlog-proof|expect|txt)$/.test(name) && !name.startsWith('.') && !/private|secret|signing/i.test(name);
}

// A Go-format private key must never leave the machine, whatever its name.
function looksPrivate(file) {
  try {
    const fd = openSync(file, 'r');
    const head = Buffer.alloc(12);
    readSync(fd, head, 0, 12, 0);
    closeSync(fd);
    return head.toString('latin1') === 'PRIVATE+KEY+';
  } catch {
    return true;
  }
}

export function startServer({ root, samples, port = 8080, host = '127.0.0.1', quiet = false }) {
  const rootDir = resolve(root);
  const samplesDir = samples ? resolve(samples) : null;
  const server = createServer((req, res) => {
    const headers = {
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cache-Control': 'no-cache',
    };
    const send = (status, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { ...headers, 'Content-Type': type });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    const path = new URL(req.url, 'http://x').pathname;
    let file;
    if (path === '/samples/index.json') {
      if (!samplesDir) return send(404, 'no samples\n');
      let list = [];
      try {
        list = readdirSync(samplesDir, { withFileTypes: true })
          .filter((d) => d.isFile() && isSampleName(d.name) && !looksPrivate(join(samplesDir, d.name)))
          .map((d) => ({ name: d.name, size: statSync(join(samplesDir, d.name)).size }))
          .sort((a, b) => a.name.localeCompare(b.name));
      } catch {
        // missing directory: an empty list
      }
      return send(200, JSON.stringify(list), MIME['.json']);
    } else if (path.startsWith('/samples/')) {
      if (!samplesDir) return send(404, 'no samples\n');
      // Only the sample files themselves: no sub-folders, nothing that could be a key.
      const name = path.slice('/samples/'.length);
      if (!isSampleName(name)) return send(404, 'not found\n');
      file = inside(samplesDir, '/' + name);
    } else {
      file = inside(rootDir, path.endsWith('/') ? path + 'index.html' : path);
    }
    let st;
    try {
      st = file && statSync(file);
    } catch {
      st = null;
    }
    if (st && st.isDirectory()) {
      res.writeHead(301, { ...headers, Location: path + '/' });
      return res.end();
    }
    if (!st || !st.isFile()) return send(404, 'not found\n');
    if (samplesDir && file.startsWith(samplesDir) && looksPrivate(file)) return send(404, 'not found\n');
    const type = MIME[extname(file).toLowerCase()] || 'application/octet-stream';
    res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': st.size });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
      if (!quiet) console.log(`Serving ${rootDir} at ${url}${samplesDir ? ` (samples from ${samplesDir} at ${url}samples/)` : ''}`);
      resolveListen({ server, url });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('serve.mjs')) {
  try {
    await startServer(parseArgs(process.argv.slice(2)));
  } catch (e) {
    console.error(`serve: ${e.message}`);
    process.exit(2);
  }
}
