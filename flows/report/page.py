"""The report page: inline CSS and the sample browser's inline JavaScript (no network at view time)."""
from __future__ import annotations

import json
from typing import Any

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #fff; }
header { background: #1d3557; color: #fff; padding: 14px 28px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; opacity: .85; font-size: 13px; }
nav { padding: 8px 28px; background: #eef2f7; font-size: 14px; } nav a { margin-right: 14px; }
main { padding: 0 28px 40px; max-width: 1400px; }
h2 { border-bottom: 2px solid #1d3557; padding-bottom: 4px; margin-top: 32px; } h3 { margin-bottom: 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 14px; }
th, td { border: 1px solid #cfd6e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-direction: column; gap: 16px; } .plots figure { margin: 0; }
.plots img { width: 100%; max-width: 1200px; border: 1px solid #e3e7ee; }
figcaption { font-size: 12px; color: #555; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; border: 1px solid #e3e7ee;
      padding: 8px; font-size: 13px; margin: 4px 0; }
.note { color: #7a4b00; background: #fff6e0; padding: 6px 10px; border-left: 4px solid #e0a100; font-size: 13px; }
.muted { color: #667; font-size: 12px; }
.controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; background: #eef2f7; padding: 10px;
            border-radius: 6px; } .controls label { font-size: 12px; display: flex; flex-direction: column; }
.controls select { font-size: 14px; max-width: 520px; }
.ok { color: #11782f; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
.sample { border: 1px solid #cfd6e0; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
details summary { cursor: pointer; }
"""

JS = r"""
(function () {
  var DATA = JSON.parse(document.getElementById('samples-data').textContent);
  var el = function (id) { return document.getElementById(id); };
  var sel = {ev: el('pick-eval'), bank: el('pick-bank'), selection: el('pick-selection'), k: el('pick-k'),
    seed: el('pick-seed'), item: el('pick-item')};
  var wrongOnly = el('pick-wrong');
  function fill(select, values, labels, keep) {
    select.innerHTML = '';
    values.forEach(function (v, i) {
      var o = document.createElement('option'); o.value = String(v); o.textContent = labels ? labels[i] : String(v);
      select.appendChild(o);
    });
    if (keep !== undefined && values.map(String).indexOf(String(keep)) >= 0) { select.value = String(keep); }
  }
  function uniq(xs) { return xs.filter(function (x, i) { return xs.indexOf(x) === i; }); }
  function ev() { return DATA.evals[Number(sel.ev.value)]; }
  function cells() { return ev().cells; }
  function inLine(c) { return c.bank === sel.bank.value && c.selection === sel.selection.value; }
  function cell() {
    var k = sel.k.value, s = Number(sel.seed.value);
    return cells().filter(function (c) { return inLine(c) && c.label === k && c.seed === s; })[0];
  }
  function text(tag, cls, content) {
    var n = document.createElement(tag); if (cls) { n.className = cls; } n.textContent = content; return n;
  }
  function verdict(ok) { return text('span', ok ? 'ok' : 'bad', ok ? 'correct' : 'wrong'); }
  function refreshBanks(keep) {
    fill(sel.bank, uniq(cells().map(function (c) { return c.bank; })), null, keep.bank);
    refreshSelection(keep);
  }
  function refreshSelection(keep) {
    fill(sel.selection, uniq(cells().filter(function (c) { return c.bank === sel.bank.value; })
      .map(function (c) { return c.selection; })), null, keep.selection);
    refreshK(keep);
  }
  function refreshK(keep) {
    var ks = uniq(cells().filter(inLine).map(function (c) { return c.label; }));
    var num = function (l) { return /^[0-9]+$/.test(l) ? Number(l) : Infinity; };
    fill(sel.k, ks.sort(function (a, b) { return num(a) - num(b); }), null, keep.k);
    refreshSeed(keep);
  }
  function refreshSeed(keep) {
    var ss = uniq(cells().filter(function (c) { return inLine(c) && c.label === sel.k.value; })
      .map(function (c) { return c.seed; }));
    fill(sel.seed, ss, null, keep.seed);
    refreshItems(keep);
  }
  function refreshItems(keep) {
    var c = cell(), e = ev(), rows = c ? (e.rows[c.key] || {}) : {};
    var items = e.items.filter(function (i) { return rows[i] && (!wrongOnly.checked || !rows[i][0][4]); });
    var labels = items.map(function (i) {
      var q = e.questions[i] || ''; return (rows[i][0][4] ? '\u2713 ' : '\u2717 ') + i + ' \u2014 ' + q.slice(0, 70);
    });
    fill(sel.item, items, labels, keep.item);
    render();
  }
  function render() {
    var view = el('sample-view'); view.innerHTML = '';
    var e = ev(), c = cell(), item = sel.item.value;
    if (!c || !item) { view.appendChild(text('p', 'note', e.note || 'no samples for this choice')); return; }
    history.replaceState(null, '', '#' + ['eval=' + sel.ev.value, 'bank=' + c.bank,
      'selection=' + encodeURIComponent(c.selection), 'k=' + c.label, 'seed=' + c.seed,
      'item=' + encodeURIComponent(item)].join('&'));
    var kText = c.label === String(c.k) ? 'K=' + c.k : 'K=' + c.label + ' (' + c.k + ')';
    var line = c.k === 0 ? c.bank : c.bank + ' (' + c.selection + ')';  // zero-shot has no shots to select
    var title = text('h3', null, 'Item ' + item + ' \u2014 ' + line + ', ' + kText + ', seed ' + c.seed);
    title.id = 'sample-title'; view.appendChild(title);
    var q = text('pre', 'question', e.questions[item] || '(question not found in the test split)');
    q.id = 'sample-question'; view.appendChild(q);
    var gold = text('p', null, 'Gold answer: '); gold.appendChild(text('strong', null, e.gold[item]));
    gold.id = 'sample-gold'; view.appendChild(gold);
    (e.rows[c.key][item] || []).forEach(function (r) {
      var box = document.createElement('div'); box.className = 'sample';
      var head = text('p', null, 'Sample ' + r[0] + ' \u00b7 ' + r[6] + ' prompt tokens \u00b7 strict: ');
      head.appendChild(text('code', null, r[2] === null ? '(none)' : r[2])); head.appendChild(document.createTextNode(' '));
      head.appendChild(verdict(r[4]));
      head.appendChild(document.createTextNode(' \u00b7 flexible: '));
      head.appendChild(text('code', null, r[3] === null ? '(none)' : r[3])); head.appendChild(document.createTextNode(' '));
      head.appendChild(verdict(r[5]));
      box.appendChild(head); box.appendChild(text('pre', 'response', r[1])); view.appendChild(box);
    });
    var check = (e.prompt_check[c.key] || {})[item];
    view.appendChild(text('h3', null, 'Shots in the prompt (' + c.k + ')'));
    view.appendChild(text('p', 'muted', 'in prompt order, as the result row recorded them (shot_ids)'));
    if (check) {
      view.appendChild(text('p', 'muted', 'prompt made of these shots vs. the prompt hash of the run: ' + check));
    }
    if (c.k === 0) { view.appendChild(text('p', 'muted', 'zero-shot: no shots')); return; }
    var bank = e.shots[c.bank] || {status: 'no shot data'};
    if (bank.status !== 'found') { view.appendChild(text('p', 'note', bank.status)); return; }
    var shots = (e.prompt_shots[c.key] || {})[item];
    if (typeof shots !== 'number') { view.appendChild(text('p', 'note', shots || 'no shot data')); return; }
    var list = document.createElement('ol'); list.id = 'sample-shots';
    bank.lists[shots].forEach(function (idx) {
      var s = bank.texts[idx], li = document.createElement('li'), d = document.createElement('details');
      d.appendChild(text('summary', null, s[0] + ': ' + s[1].slice(0, 100)));
      d.appendChild(text('pre', null, s[1]));
      d.appendChild(text('pre', null, s[2] === null ? '(no rationale: bare problem)' : s[2]));
      li.appendChild(d); list.appendChild(li);
    });
    view.appendChild(list);
  }
  var hash = {};
  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
    var p = kv.split('='); if (p.length === 2) { hash[p[0]] = decodeURIComponent(p[1]); }
  });
  if (hash.bank === 'none') { hash.bank = 'zero-shot'; }  // the zero-shot cell's label in the data
  fill(sel.ev, DATA.evals.map(function (e, i) { return i; }), DATA.evals.map(function (e) { return e.task; }), hash.eval);
  sel.ev.onchange = function () { refreshBanks({}); };
  sel.bank.onchange = function () { refreshSelection({selection: sel.selection.value, item: sel.item.value}); };
  sel.selection.onchange = function () { refreshK({k: sel.k.value, seed: sel.seed.value, item: sel.item.value}); };
  sel.k.onchange = function () { refreshSeed({seed: sel.seed.value, item: sel.item.value}); };
  sel.seed.onchange = function () { refreshItems({item: sel.item.value}); };
  sel.item.onchange = render;
  wrongOnly.onchange = function () { refreshItems({item: sel.item.value}); };
  refreshBanks(hash);
  var asked = ['eval', 'bank', 'selection', 'k', 'seed', 'item'].filter(function (name) {
    return hash[name] !== undefined; });
  var missing = asked.filter(function (name) { return sel[name === 'eval' ? 'ev' : name].value !== hash[name]; });
  if (missing.length) {
    var notice = el('link-notice');
    notice.textContent = 'The link asks for ' + missing.map(function (name) { return name + '=' + hash[name]; })
      .join(', ') + ', which this report does not have; showing ' + missing.map(function (name) {
        return name + '=' + sel[name === 'eval' ? 'ev' : name].value; }).join(', ') + ' instead.';
    notice.hidden = false;
  }
  if (asked.length) {  // a link to a sample opens at the sample browser, also once the plots have their size
    var show = function () { el('samples').scrollIntoView(); };
    show(); window.addEventListener('load', show);
  }
})();
"""

BROWSER = """
<div class="controls">
  <label>evaluation<select id="pick-eval"></select></label>
  <label>bank<select id="pick-bank"></select></label>
  <label>shot selection<select id="pick-selection"></select></label>
  <label>K<select id="pick-k"></select></label>
  <label>seed<select id="pick-seed"></select></label>
  <label>item<select id="pick-item"></select></label>
  <label><span><input type="checkbox" id="pick-wrong"> only wrong (strict)</span></label>
</div>
<p id="link-notice" class="note" hidden></p>
<div id="sample-view"></div>
"""


def embed_json(data: Any) -> str:
    """JSON safe inside a <script> element: every '<' (only ever inside strings) is written as \\u003c."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, default=str).replace("<", "\\u003c")


def page(title: str, subtitle: str, nav: str, body: str, data: Any) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>\n'
            f'<body><header><h1>{title}</h1><p>{subtitle}</p></header><nav>{nav}</nav><main>{body}</main>\n'
            f'<script type="application/json" id="samples-data">{embed_json(data)}</script>\n'
            f'<script>{JS}</script></body></html>\n')
