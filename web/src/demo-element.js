// Demo for element.html: one <stele-verifier> per sample export served by serve.mjs,
// and one on a dark host themed with the element's custom properties.
import './stele-verifier.js';

const boxes = document.getElementById('boxes');
const list = await (await fetch('samples/index.json')).json();
const keyRes = await fetch('samples/key.txt');
const key = keyRes.ok ? (await keyRes.text()).split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#')) || '' : '';
const dark = document.getElementById('dark');
if (dark) {
  const v = document.createElement('stele-verifier');
  v.keys = key;
  v.src = 'samples/valid.stele';
  dark.append(v);
}
for (const f of list.filter((f) => /\.stele$/.test(f.name) && f.size < 20e6)) {
  const h = document.createElement('h2');
  h.textContent = f.name;
  const v = document.createElement('stele-verifier');
  v.keys = key;
  v.src = `samples/${encodeURIComponent(f.name)}`;
  boxes.append(h, v);
}
