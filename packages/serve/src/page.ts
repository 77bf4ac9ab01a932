/** The search page of `distill serve` (one file, no build step, no external assets). */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>distill search</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 960px; padding: 0 1rem; color: #222; }
  form { display: flex; gap: .5rem; }
  input[type=search] { flex: 1; font-size: 1.1rem; padding: .4rem .6rem; }
  #status { color: #666; margin: .6rem 0; min-height: 1.2em; }
  #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: .8rem; }
  figure.hit { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: .4rem; text-align: center; }
  figure.hit img { width: 96px; height: 96px; object-fit: contain; image-rendering: auto; }
  figcaption { font-size: .8rem; }
  .score { color: #07a; font-variant-numeric: tabular-nums; }
  #drop { border: 2px dashed #aaa; border-radius: 6px; padding: .8rem; margin-top: 1rem; color: #666; text-align: center; }
  #drop.over { border-color: #07a; color: #07a; }
  #captions li { margin: .2rem 0; }
  .error { color: #b00; }
</style>
</head>
<body>
<h1>distill search</h1>
<p id="info"></p>
<form id="form">
  <input id="q" type="search" name="q" placeholder="describe an image, e.g. red heart" autofocus autocomplete="off">
  <select id="k" name="k"><option>5</option><option selected>10</option><option>20</option><option>50</option></select>
  <button type="submit">Search</button>
</form>
<div id="status"></div>
<div id="results"></div>
<div id="drop">Drop an image here to see the nearest captions</div>
<ol id="captions"></ol>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
fetch('/api/info').then((r) => r.json()).then((i) => { $('info').textContent = i.images + ' images, ' + i.texts + ' captions; model ' + i.model.name + ' (' + i.model.dim + '-d)'; });
let seq = 0;
async function search() {
  const q = $('q').value.trim();
  if (!q) return;
  const my = ++seq;
  const t0 = performance.now();
  const r = await fetch('/api/search?q=' + encodeURIComponent(q) + '&k=' + $('k').value);
  const j = await r.json();
  if (my !== seq) return;
  if (!r.ok) { $('status').innerHTML = '<span class="error">' + esc(j.error) + '</span>'; return; }
  const total = performance.now() - t0;
  $('status').textContent = j.results.length + ' results in ' + (j.ms.embed + j.ms.search).toFixed(1) + ' ms (embed ' + j.ms.embed.toFixed(1) + ' ms, search ' + j.ms.search.toFixed(2) + ' ms; ' + total.toFixed(0) + ' ms round trip)';
  $('results').innerHTML = j.results.map((h) =>
    '<figure class="hit" data-id="' + esc(h.id) + '" data-rank="' + h.rank + '">' +
    '<img class="thumb" alt="' + esc(h.captions && h.captions[0] || h.id) + '" src="/api/thumb?id=' + encodeURIComponent(h.id) + '">' +
    '<figcaption><span class="score">' + h.score.toFixed(3) + '</span> ' + esc(h.captions && h.captions[0] || h.id) + '</figcaption></figure>').join('');
}
$('form').addEventListener('submit', (e) => { e.preventDefault(); search(); });
let timer;
$('q').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 250); });
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', async (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer.files[0];
  if (!f) return;
  const r = await fetch('/api/search-image?k=' + $('k').value, { method: 'POST', body: f });
  const j = await r.json();
  if (!r.ok) { $('status').innerHTML = '<span class="error">' + esc(j.error) + '</span>'; return; }
  $('status').textContent = 'nearest captions of ' + f.name + ' in ' + (j.ms.embed + j.ms.search).toFixed(1) + ' ms';
  $('captions').innerHTML = j.results.map((h) => '<li><span class="score">' + h.score.toFixed(3) + '</span> ' + esc(h.text) + ' <small>(' + esc(h.id) + ')</small></li>').join('');
});
</script>
</body>
</html>
`;
