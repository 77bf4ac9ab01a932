/**
 * The search page of `distill serve` and `distill site` (one file, no build step, no external assets).
 * The same page runs over two backends: the server's JSON API, or (distill site) the student itself in the
 * browser (onnxruntime-web) with an exact dot product over the vectors. A backend is an object with
 * info(), search(q, k), similar(id, k), image(id) and searchImage(file, k), each resolving to the API's JSON.
 */

const STYLE = `
  :root { --fg: #1d1d1f; --muted: #6b6b70; --line: #d9d9de; --accent: #0a66c2; --bg: #fff; --card: #f7f7f9; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--fg); background: var(--bg); }
  header { position: sticky; top: 0; z-index: 2; background: var(--bg); border-bottom: 1px solid var(--line); padding: .8rem 1rem; }
  .wrap { max-width: 1100px; margin: 0 auto; }
  h1 { font-size: 1.1rem; margin: 0 0 .5rem; font-weight: 600; }
  h1 small { color: var(--muted); font-weight: 400; }
  form { display: flex; gap: .5rem; flex-wrap: wrap; }
  input[type=search] { flex: 1 1 240px; min-width: 0; font-size: 1.05rem; padding: .55rem .7rem; border: 1px solid var(--line); border-radius: 8px; }
  select, button, .btn { font: inherit; padding: .5rem .8rem; border: 1px solid var(--line); border-radius: 8px; background: var(--card); color: var(--fg); cursor: pointer; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  .hint { color: var(--muted); font-size: .82rem; margin: .45rem 0 0; }
  main { padding: 1rem; }
  #status { color: var(--muted); min-height: 1.4em; margin-bottom: .6rem; }
  #status.error { color: #b00020; }
  #status.loading::before { content: ""; display: inline-block; width: .9em; height: .9em; margin-right: .4em; vertical-align: -.1em; border: 2px solid var(--line); border-top-color: var(--accent); border-radius: 50%; animation: spin .8s linear infinite; }
  @keyframes spin { to { transform: rotate(360deg); } }
  #query { display: flex; align-items: center; gap: .8rem; margin-bottom: .8rem; }
  #query img { width: 72px; height: 72px; object-fit: contain; background: var(--card); border-radius: 8px; border: 1px solid var(--line); }
  #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .8rem; }
  #results.stale { opacity: .45; }
  .hit { margin: 0; border: 1px solid var(--line); border-radius: 10px; padding: .5rem; background: var(--card); cursor: pointer; text-align: left; display: flex; flex-direction: column; gap: .35rem; }
  .hit:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
  .hit img { width: 100%; aspect-ratio: 1; object-fit: contain; background: #fff; border-radius: 6px; }
  .hit .cap { font-size: .85rem; overflow: hidden; text-overflow: ellipsis; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
  .score { color: var(--accent); font-variant-numeric: tabular-nums; font-size: .8rem; }
  .empty { padding: 2rem 0; color: var(--muted); text-align: center; grid-column: 1 / -1; }
  #detail { position: fixed; inset: 0; background: rgba(0,0,0,.45); display: flex; align-items: center; justify-content: center; z-index: 5; padding: 1rem; }
  #detail[hidden] { display: none; }
  #detail .panel { background: var(--bg); border-radius: 12px; max-width: 760px; width: 100%; max-height: 100%; overflow: auto; display: grid; grid-template-columns: minmax(0, 300px) 1fr; gap: 1rem; padding: 1rem; position: relative; }
  #detail img { width: 100%; aspect-ratio: 1; object-fit: contain; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
  #detail h2 { font-size: 1.05rem; margin: 0 1.8rem .4rem 0; word-break: break-all; }
  #detail ul { padding-left: 1.1rem; margin: .4rem 0 .8rem; }
  #detail .actions { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center; }
  #close { position: absolute; top: .5rem; right: .5rem; padding: .2rem .6rem; }
  .explain { color: var(--muted); font-size: .8rem; }
  body.dragging::after { content: "Drop the image to search by it"; position: fixed; inset: .5rem; border: 3px dashed var(--accent); border-radius: 12px; display: flex; align-items: center; justify-content: center; font-size: 1.3rem; color: var(--accent); background: rgba(255,255,255,.85); z-index: 9; }
  footer { color: var(--muted); font-size: .8rem; padding: 0 1rem 1rem; }
  @media (max-width: 600px) {
    header { padding: .6rem .7rem; }
    main { padding: .7rem; }
    #results { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: .55rem; }
    #detail { padding: 0; align-items: stretch; }
    #detail .panel { grid-template-columns: 1fr; align-content: start; border-radius: 0; }
    #detail img { max-height: 45vh; }
    .hint .keys { display: none; }
  }
`;

const BODY = `
<header><div class="wrap">
  <h1>distill search <small id="info"></small></h1>
  <form id="form" role="search">
    <input id="q" type="search" name="q" maxlength="4000" placeholder="Describe an image, e.g. red heart" autocomplete="off" aria-label="Search images by text">
    <select id="k" name="k" aria-label="Number of results"><option>10</option><option selected>20</option><option>50</option><option>100</option></select>
    <button class="primary" type="submit">Search</button>
    <label class="btn" for="file" id="file-label">Search by image…</label>
    <input id="file" type="file" accept="image/*" hidden>
  </form>
  <p class="hint">Paste or drop an image anywhere to find similar ones. <span class="keys">Keys: <kbd>/</kbd> search, arrows move, <kbd>Enter</kbd> opens, <kbd>Esc</kbd> closes.</span></p>
</div></header>
<main class="wrap">
  <div id="status" role="status" aria-live="polite"></div>
  <div id="query" hidden><img alt="query image"><div><div id="query-label"></div><div class="explain" id="query-sub"></div></div></div>
  <div id="results" aria-label="results"></div>
  <p class="explain" id="explain" hidden>Score: cosine similarity of the query's and the image's embeddings in the student's shared space (from -1 to 1; higher is closer). Only the order matters; scores of unrelated images are not zero.</p>
</main>
<div id="detail" role="dialog" aria-modal="true" aria-labelledby="d-name" hidden>
  <div class="panel">
    <button id="close" aria-label="Close">×</button>
    <img id="d-img" alt="">
    <div>
      <h2 id="d-name"></h2>
      <div class="score" id="d-score"></div>
      <div class="explain">cosine similarity to the query</div>
      <ul id="d-caps"></ul>
      <div class="actions"><button class="primary" id="more">More like this</button><a id="d-orig" target="_blank" rel="noopener">Open the original</a></div>
    </div>
  </div>
</div>
<footer class="wrap" id="foot"></footer>
`;

/** The page logic (plain JS; `backend` is defined by the script before it). */
const APP = `
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
let seq = 0, hits = [], lastQuery = null;
const status = (text, cls) => { const s = $('status'); s.className = cls || ''; s.textContent = text; };

backend.info().then((i) => {
  $('info').textContent = '· ' + i.images + ' images, ' + i.texts + ' captions';
  $('foot').textContent = 'model ' + i.model.name + ' (' + i.model.dim + '-d, sha256 ' + String(i.model.hash).slice(0, 12) + ')' + (i.where ? ' · ' + i.where : '');
}).catch((e) => status('Could not reach the index: ' + e.message, 'error'));

function urlFor(p) {
  if (p.q) return '?q=' + encodeURIComponent(p.q);
  if (p.image) return '?image=' + encodeURIComponent(p.image);
  return location.pathname;
}

async function run(p, push) {
  const k = Number($('k').value);
  if (push && !p.file) history.pushState(p, '', urlFor(p));
  if (push && p.file) history.pushState({}, '', location.pathname);
  closeDetail();
  const my = ++seq;
  lastQuery = p;
  $('results').classList.add('stale');
  $('results').setAttribute('aria-busy', 'true');
  $('explain').hidden = true;
  const q = $('query');
  if (p.q) { $('q').value = p.q; q.hidden = true; }
  else $('q').value = '';
  status(p.q ? 'Searching for “' + p.q + '”…' : 'Searching for similar images…', 'loading');
  try {
    let r, label = '', sub = '', src = '';
    if (p.q) r = await backend.search(p.q, k);
    else if (p.image) {
      const im = await backend.image(p.image);
      r = await backend.similar(p.image, k);
      label = 'Images like ' + im.name; sub = im.captions.slice(0, 3).join(' · '); src = im.thumb;
    } else {
      src = URL.createObjectURL(p.file);
      r = await backend.searchImage(p.file, k);
      label = 'Images like your picture' + (p.file.name ? ' (' + p.file.name + ')' : ''); sub = 'not added to the index';
    }
    if (my !== seq) return;
    if (!p.q) { q.hidden = false; q.querySelector('img').src = src; $('query-label').textContent = label; $('query-sub').textContent = sub; }
    render(r);
  } catch (e) {
    if (my !== seq) return;
    $('results').innerHTML = '';
    status(e.message, 'error');
  } finally {
    if (my === seq) { $('results').classList.remove('stale'); $('results').removeAttribute('aria-busy'); }
  }
}

function render(r) {
  hits = r.results;
  const grid = $('results');
  if (!hits.length) {
    grid.innerHTML = '<div class="empty">No results. Try other words, or another picture.</div>';
    status('No results.');
    return;
  }
  grid.innerHTML = hits.map((h, i) =>
    '<figure class="hit" tabindex="0" role="button" data-i="' + i + '" data-id="' + esc(h.id) + '" data-rank="' + h.rank + '" aria-label="' + esc((h.captions && h.captions[0]) || h.name) + ', score ' + h.score.toFixed(3) + '">' +
    '<img class="thumb" loading="lazy" alt="' + esc((h.captions && h.captions[0]) || h.name) + '" src="' + esc(h.thumb) + '">' +
    '<figcaption><span class="score" title="cosine similarity to the query">' + h.score.toFixed(3) + '</span> <span class="cap">' + esc((h.captions && h.captions[0]) || h.name) + '</span></figcaption></figure>').join('');
  const t = r.ms ? r.ms.embed + r.ms.search : undefined;
  const ms = t === undefined ? '' : ' in ' + (t < 1 ? t.toFixed(2) : t.toFixed(1)) + ' ms';
  status(hits.length + ' results' + ms + ' · score = cosine similarity');
  $('explain').hidden = false;
}

let opener = null;
function openDetail(i) {
  const h = hits[i];
  if (!h) return;
  opener = document.activeElement;
  $('d-img').src = h.thumb;
  $('d-img').alt = (h.captions && h.captions[0]) || h.name;
  $('d-name').textContent = h.name;
  $('d-score').textContent = 'score ' + h.score.toFixed(4) + ' · rank ' + h.rank;
  const caps = h.captions || [];
  $('d-caps').innerHTML = caps.length ? caps.map((c) => '<li>' + esc(c) + '</li>').join('') : '<li class="explain">no captions</li>';
  if (h.original) { $('d-orig').href = h.original; $('d-orig').hidden = false; } else $('d-orig').hidden = true;
  $('more').dataset.id = h.id;
  $('detail').hidden = false;
  $('more').focus();
}
function closeDetail() {
  if ($('detail').hidden) return;
  $('detail').hidden = true;
  if (opener && opener.focus) opener.focus();
}

$('form').addEventListener('submit', (e) => { e.preventDefault(); const q = $('q').value.trim(); if (q) run({ q }, true); });
$('k').addEventListener('change', () => lastQuery && !lastQuery.file && run(lastQuery, false));
$('results').addEventListener('click', (e) => { const f = e.target.closest('.hit'); if (f) openDetail(Number(f.dataset.i)); });
$('close').addEventListener('click', closeDetail);
$('detail').addEventListener('click', (e) => { if (e.target === $('detail')) closeDetail(); });
$('more').addEventListener('click', () => run({ image: $('more').dataset.id }, true));
$('file').addEventListener('change', () => { const f = $('file').files[0]; if (f) run({ file: f }, true); $('file').value = ''; });
document.addEventListener('paste', (e) => {
  const f = [...(e.clipboardData ? e.clipboardData.files : [])].find((x) => x.type.startsWith('image/'));
  if (f) { e.preventDefault(); run({ file: f }, true); }
});
let drags = 0;
document.addEventListener('dragenter', (e) => { e.preventDefault(); drags++; document.body.classList.add('dragging'); });
document.addEventListener('dragleave', () => { if (--drags <= 0) { drags = 0; document.body.classList.remove('dragging'); } });
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault(); drags = 0; document.body.classList.remove('dragging');
  const f = e.dataTransfer && e.dataTransfer.files[0];
  if (f) run({ file: f }, true);
});
document.addEventListener('keydown', (e) => {
  if (!$('detail').hidden) { if (e.key === 'Escape') { e.preventDefault(); closeDetail(); } return; }
  const t = e.target;
  if (e.key === '/' && t.tagName !== 'INPUT') { e.preventDefault(); $('q').focus(); $('q').select(); return; }
  const f = t.closest && t.closest('.hit');
  if (!f) { if (e.key === 'ArrowDown' && t === $('q') && hits.length) { e.preventDefault(); $('results').querySelector('.hit').focus(); } return; }
  const i = Number(f.dataset.i), all = [...$('results').querySelectorAll('.hit')];
  const cols = all.filter((x) => x.offsetTop === all[0].offsetTop).length || 1;
  const go = { ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + cols, ArrowUp: i - cols }[e.key];
  if (go !== undefined) { e.preventDefault(); if (go >= 0 && go < all.length) all[go].focus(); else if (go < 0) $('q').focus(); }
  else if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openDetail(i); }
});
function fromUrl() {
  const u = new URLSearchParams(location.search);
  if (u.get('q')) run({ q: u.get('q') }, false);
  else if (u.get('image')) run({ image: u.get('image') }, false);
  else { closeDetail(); hits = []; $('results').innerHTML = ''; $('query').hidden = true; $('q').value = ''; status('Type what you are looking for, or give a picture.'); $('q').focus(); }
}
window.addEventListener('popstate', fromUrl);
fromUrl();
`;

/** The server backend: the JSON API of distill serve. */
const SERVER_BACKEND = `
async function call(url, init) {
  let r;
  try { r = await fetch(url, init); } catch (e) { throw new Error('The server does not answer (is distill serve still running?).'); }
  const j = await r.json().catch(() => ({ error: 'The server sent an unreadable answer (' + r.status + ').' }));
  if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
  return j;
}
const backend = {
  info: () => call('/api/info'),
  search: (q, k) => call('/api/search?q=' + encodeURIComponent(q) + '&k=' + k),
  similar: (id, k) => call('/api/similar?id=' + encodeURIComponent(id) + '&k=' + k),
  image: (id) => call('/api/image-info?id=' + encodeURIComponent(id)),
  searchImage: (file, k) => call('/api/search-image?target=images&k=' + k, { method: 'POST', body: file }),
};
`;

export function pageHtml(backend: string, opts: { module?: boolean; title?: string } = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title ?? 'distill search'}</title>
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script${opts.module ? ' type="module"' : ''}>
${backend}
${APP}
</script>
</body>
</html>
`;
}

/** The page of `distill serve`. */
export const PAGE_HTML = pageHtml(SERVER_BACKEND);
