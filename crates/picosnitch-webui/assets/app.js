// picosnitch web UI. Plain DOM and SVG, no libraries, nothing loaded from elsewhere.
// Every element is built with createElement and textContent (never HTML strings), so
// names of executables, domains and command lines are shown, never interpreted.
'use strict';
(() => {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);

  /** An element with properties: class, text, title, attrs {}, data {}, on {event: fn}. */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    applyProps(el, props);
    for (const k of kids.flat()) {
      if (k !== null && k !== undefined) el.append(k instanceof Node ? k : String(k));
    }
    return el;
  }
  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const k of kids) if (k) el.append(k);
    return el;
  }
  function applyProps(el, props) {
    if (!props) return;
    if (props.class) el.className = props.class;
    if (props.text !== undefined) el.textContent = props.text;
    if (props.title) el.title = props.title;
    for (const [k, v] of Object.entries(props.attrs || {})) el.setAttribute(k, String(v));
    for (const [k, v] of Object.entries(props.data || {})) el.dataset[k] = String(v);
    for (const [k, v] of Object.entries(props.on || {})) el.addEventListener(k, v);
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

  // ---- formatting -------------------------------------------------------------
  const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  function fmtBytes(n) {
    if (!Number.isFinite(n)) return '–';
    let v = Math.abs(n), u = 0;
    while (v >= 1000 && u < UNITS.length - 1) { v /= 1000; u++; }
    const s = u === 0 ? String(v) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
    return (n < 0 ? '-' : '') + s + ' ' + UNITS[u];
  }
  const fmtInt = (n) => Number(n).toLocaleString('en-US');
  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(t, width) {
    const d = new Date(t * 1000);
    const date = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
    const time = pad(d.getHours()) + ':' + pad(d.getMinutes());
    if (width >= 86400) return date;
    if (width < 60) return date + ' ' + time + ':' + pad(d.getSeconds());
    return date + ' ' + time;
  }
  function fmtClock(t) {
    const d = new Date(t * 1000);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function shortTick(t, span) {
    const d = new Date(t * 1000);
    if (span <= 2 * 86400) return pad(d.getHours()) + ':' + pad(d.getMinutes());
    if (span <= 60 * 86400) return pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + (span <= 7 * 86400 ? ' ' + pad(d.getHours()) + 'h' : '');
    return d.getFullYear() + '-' + pad(d.getMonth() + 1);
  }
  function toLocalInput(t) {
    const d = new Date(t * 1000);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  const PROTOCOLS = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };

  // ---- state, kept in the address bar so views can be bookmarked and shared ------
  const defaults = { view: 'overview', range: '1d', from: '', to: '', metric: 'total', by: 'exe', top: '8', group: 'exe', sort: 'total', order: 'desc', q: '' };
  const state = { ...defaults, filters: [], drill: null };
  let meta = null;
  const dims = {};

  function readHash() {
    const raw = location.hash.replace(/^#/, '');
    const [view, query] = raw.split('?');
    const p = new URLSearchParams(query || '');
    Object.assign(state, defaults);
    state.view = ['overview', 'explore', 'live'].includes(view) ? view : 'overview';
    for (const k of Object.keys(defaults)) if (k !== 'view' && p.has(k)) state[k] = p.get(k);
    state.filters = [];
    for (const [k, v] of p) {
      if (k !== 'f' && k !== 'x') continue;
      const i = v.indexOf(':');
      if (i > 0) state.filters.push({ dim: v.slice(0, i), value: v.slice(i + 1), exclude: k === 'x' });
    }
    state.drill = p.has('dg') && p.has('dk') ? { group: p.get('dg'), key: p.get('dk') } : null;
  }
  function hashFor(over) {
    const s = { ...state, ...over };
    const p = new URLSearchParams();
    for (const k of Object.keys(defaults)) if (k !== 'view' && s[k] !== defaults[k] && s[k] !== '') p.set(k, s[k]);
    for (const f of s.filters) p.append(f.exclude ? 'x' : 'f', f.dim + ':' + f.value);
    if (s.drill) { p.set('dg', s.drill.group); p.set('dk', s.drill.key); }
    const q = p.toString();
    return '#' + s.view + (q ? '?' + q : '');
  }
  function go(over) {
    const next = hashFor(over);
    if (next === location.hash) route(); else location.hash = next;
  }

  // ---- the API ------------------------------------------------------------------
  function rangeParams(p) {
    if (state.range === 'custom' && state.from) {
      p.set('from', state.from);
      if (state.to) p.set('to', state.to);
    } else {
      p.set('range', state.range === 'custom' ? '1d' : state.range);
    }
  }
  function filterParams(p, filters) {
    for (const f of filters) p.append(f.exclude ? 'x' : 'f', f.dim + ':' + f.value);
  }
  /** {data} or {error: {status, kind, error}}. */
  async function api(path, p) {
    try {
      const r = await fetch('/api/' + path + '?' + p.toString(), { headers: { Accept: 'application/json' } });
      const body = await r.json().catch(() => null);
      if (!r.ok) return { error: body && body.error ? body : { status: r.status, kind: 'http', error: 'the server answered ' + r.status } };
      return { data: body };
    } catch (e) {
      return { error: { status: 0, kind: 'offline', error: 'The web UI is not reachable (' + e.message + '). Is `picosnitch webui` still running?' } };
    }
  }

  const banner = $('banner');
  function showProblem(err) {
    if (!err) { banner.hidden = true; clear(banner); return; }
    banner.hidden = false;
    banner.dataset.kind = err.kind || '';
    banner.textContent = err.error;
  }

  // ---- theme --------------------------------------------------------------------
  const THEMES = ['auto', 'light', 'dark'];
  function applyTheme() {
    const chosen = localStorage.getItem('picosnitch-theme') || (meta && meta.theme) || 'auto';
    const dark = chosen === 'dark' || (chosen !== 'light' && window.matchMedia('(prefers-color-scheme: dark)').matches);
    document.documentElement.dataset.theme = dark ? 'dark' : 'light';
    $('theme').title = 'Theme: ' + (THEMES.includes(chosen) ? chosen : 'auto') + ' (click to change)';
  }
  $('theme').addEventListener('click', () => {
    const now = localStorage.getItem('picosnitch-theme') || (meta && meta.theme) || 'auto';
    localStorage.setItem('picosnitch-theme', THEMES[(THEMES.indexOf(now) + 1) % THEMES.length]);
    applyTheme();
    route();
  });
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);

  // ---- colours: distinguishable in both themes ------------------------------------
  const PALETTE = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#dc2626', '#0891b2', '#ca8a04', '#db2777', '#4f46e5', '#65a30d',
    '#0d9488', '#c2410c', '#7c3aed', '#be123c', '#0284c7', '#a16207', '#15803d', '#6d28d9', '#b91c1c', '#0e7490'];
  const restColour = () => getComputedStyle(document.documentElement).getPropertyValue('--rest').trim() || '#a0a8b4';

  // ---- values of a dimension, as shown -------------------------------------------
  function showValue(dim, key, label, width) {
    if (dim === 'time') return fmtTime(Number(key), width || 3600);
    if (dim === 'user') return label ? label + ' (' + key + ')' : String(key);
    if (dim === 'lport' || dim === 'rport') return key === 0 ? '(none)' : String(key);
    const text = label !== undefined && label !== '' ? label : String(key);
    return text === '' ? '(none)' : text;
  }
  /** The value in filters and drill-downs: times carry their width. */
  function keyParam(dim, key, width) {
    return dim === 'time' ? key + '/' + width : String(key);
  }

  // ---- tooltip ---------------------------------------------------------------------
  const tip = $('tip');
  function showTip(x, y, content) {
    clear(tip);
    tip.append(content);
    tip.hidden = false;
    const r = tip.getBoundingClientRect();
    tip.style.left = Math.max(4, Math.min(window.innerWidth - r.width - 4, x + 14)) + 'px';
    tip.style.top = Math.max(4, Math.min(window.innerHeight - r.height - 4, y + 14)) + 'px';
  }
  const hideTip = () => { tip.hidden = true; };

  // ---- a stacked area chart ------------------------------------------------------------
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  /** layers: [{label, colour, values}], bottom first. */
  function stackedChart(box, chart, layers, onZoom) {
    clear(box);
    const W = Math.max(box.clientWidth, 280), H = Math.max(box.clientHeight, 160);
    const m = { l: 62, r: 10, t: 10, b: 24 };
    const n = chart.buckets, pw = W - m.l - m.r, ph = H - m.t - m.b;
    const tops = new Array(n).fill(0);
    const stacks = layers.map((L) => L.values.map((v, i) => { const b = tops[i]; tops[i] += Math.max(0, v); return [b, tops[i]]; }));
    const ymax = niceMax(Math.max(0, ...tops));
    const x = (i) => m.l + (n === 1 ? pw / 2 : (i / (n - 1)) * pw);
    const y = (v) => m.t + ph - (v / ymax) * ph;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'bytes over time, stacked by contributor' });
    const axis = svg('g', { class: 'axis' });
    for (let k = 0; k <= 4; k++) {
      const v = (ymax * k) / 4;
      axis.append(svg('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
      const t = svg('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' });
      t.textContent = fmtBytes(v);
      axis.append(t);
    }
    const span = n * chart.width;
    const ticks = Math.min(n, Math.max(2, Math.floor(pw / 110)));
    for (let k = 0; k < ticks; k++) {
      const i = ticks === 1 ? 0 : Math.round((k * (n - 1)) / (ticks - 1));
      const t = svg('text', { x: x(i), y: H - 6, 'text-anchor': k === 0 ? 'start' : k === ticks - 1 ? 'end' : 'middle' });
      t.textContent = shortTick(chart.first + i * chart.width, span);
      axis.append(t);
    }
    root.append(axis);
    layers.forEach((L, li) => {
      const s = stacks[li];
      if (n === 1) {
        root.append(svg('rect', { x: m.l + pw / 3, width: pw / 3, y: y(s[0][1]), height: Math.max(0, y(s[0][0]) - y(s[0][1])), fill: L.colour, 'fill-opacity': 0.85 }));
        return;
      }
      let d = '';
      for (let i = 0; i < n; i++) d += (i ? 'L' : 'M') + x(i).toFixed(1) + ',' + y(s[i][1]).toFixed(1);
      for (let i = n - 1; i >= 0; i--) d += 'L' + x(i).toFixed(1) + ',' + y(s[i][0]).toFixed(1);
      root.append(svg('path', { d: d + 'Z', fill: L.colour, 'fill-opacity': 0.85, stroke: L.colour, 'stroke-width': 0.5, 'data-series': L.label }));
    });
    const cursor = svg('line', { class: 'cursor', y1: m.t, y2: m.t + ph, visibility: 'hidden' });
    root.append(cursor);
    const bucketAt = (ev) => {
      const r = root.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * W;
      return Math.max(0, Math.min(n - 1, Math.round(n === 1 ? 0 : ((px - m.l) / pw) * (n - 1))));
    };
    root.addEventListener('pointermove', (ev) => {
      const i = bucketAt(ev);
      cursor.setAttribute('x1', x(i)); cursor.setAttribute('x2', x(i)); cursor.setAttribute('visibility', 'visible');
      const t0 = chart.first + i * chart.width;
      const rows = layers.map((L) => ({ L, v: L.values[i] })).filter((r) => r.v > 0).sort((a, b) => b.v - a.v);
      const table = h('table', null, rows.map((r) => h('tr', null,
        h('td', null, h('span', { class: 'swatch', attrs: { 'aria-hidden': 'true' }, on: {} }, '')),
        h('td', { text: r.L.label }), h('td', { class: 'num', text: fmtBytes(r.v) }))));
      table.querySelectorAll('.swatch').forEach((sw, k) => { sw.style.background = rows[k].L.colour; });
      showTip(ev.clientX, ev.clientY, h('div', null, h('div', { class: 'muted', text: fmtTime(t0, chart.width) + ' + ' + durationText(chart.width) }),
        rows.length ? table : h('div', { text: 'nothing' }), h('div', { text: 'total ' + fmtBytes(tops[i]) })));
    });
    root.addEventListener('pointerleave', () => { cursor.setAttribute('visibility', 'hidden'); hideTip(); });
    if (onZoom) {
      root.addEventListener('wheel', (ev) => {
        ev.preventDefault();
        const i = bucketAt(ev);
        onZoom(chart.first + (i + 0.5) * chart.width, ev.deltaY > 0 ? 1.6 : 1 / 1.6);
      }, { passive: false });
    }
    box.append(root);
  }
  function durationText(s) {
    if (s % 86400 === 0) return s / 86400 + ' d';
    if (s % 3600 === 0) return s / 3600 + ' h';
    if (s % 60 === 0) return s / 60 + ' min';
    return s + ' s';
  }

  /** Received and sent as two small areas. */
  function sparkline(sp) {
    const W = 400, H = 90, n = sp.recv.length;
    const max = niceMax(Math.max(1, ...sp.recv, ...sp.send));
    const x = (i) => (n === 1 ? W / 2 : (i / (n - 1)) * W);
    const y = (v) => H - 14 - (v / max) * (H - 24);
    const root = svg('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'received and sent over time', 'data-testid': 'drill-spark' });
    for (const [key, colour] of [['recv', 'var(--recv)'], ['send', 'var(--send)']]) {
      let d = 'M0,' + y(0);
      for (let i = 0; i < n; i++) d += 'L' + x(i).toFixed(1) + ',' + y(sp[key][i]).toFixed(1);
      d += 'L' + W + ',' + y(0) + 'Z';
      const p = svg('path', { d, 'fill-opacity': 0.35, 'stroke-width': 1.5, 'data-series': key });
      p.setAttribute('fill', colour === 'var(--recv)' ? getComputedStyle(document.documentElement).getPropertyValue('--recv').trim() : getComputedStyle(document.documentElement).getPropertyValue('--send').trim());
      p.setAttribute('stroke', p.getAttribute('fill'));
      root.append(p);
    }
    const t = svg('text', { x: 2, y: 11 });
    t.textContent = 'max ' + fmtBytes(max) + ' per ' + durationText(sp.width);
    root.append(t);
    return root;
  }

  // ---- the range picker --------------------------------------------------------------
  const RANGE_LABELS = { '1m': '1 minute', '5m': '5 minutes', '15m': '15 minutes', '30m': '30 minutes', '1h': '1 hour', '3h': '3 hours', '6h': '6 hours', '12h': '12 hours', '1d': '1 day', '3d': '3 days', '7d': '7 days', '30d': '30 days' };
  function setupRange() {
    const sel = $('range');
    for (const r of meta.ranges) sel.append(h('option', { text: 'Last ' + (RANGE_LABELS[r.name] || r.name), attrs: { value: r.name } }));
    sel.append(h('option', { text: 'All history', attrs: { value: 'all' } }));
    sel.append(h('option', { text: 'Custom…', attrs: { value: 'custom' } }));
    sel.addEventListener('change', () => {
      if (sel.value === 'custom') {
        const now = Math.floor(Date.now() / 1000);
        $('range-from').value = toLocalInput(state.from ? Number(state.from) : now - 86400);
        $('range-to').value = toLocalInput(state.to ? Number(state.to) : now);
        $('custom-range').hidden = false;
        return;
      }
      go({ range: sel.value, from: '', to: '', drill: null });
    });
    $('range-apply').addEventListener('click', () => {
      const from = Math.floor(new Date($('range-from').value).getTime() / 1000);
      const to = Math.floor(new Date($('range-to').value).getTime() / 1000);
      if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) {
        showProblem({ kind: 'bad-range', error: 'Choose a start before the end.' });
        return;
      }
      go({ range: 'custom', from: String(from), to: String(to), drill: null });
    });
  }
  function syncRange() {
    $('range').value = state.range;
    $('custom-range').hidden = state.range !== 'custom';
    if (state.range === 'custom' && state.from) {
      $('range-from').value = toLocalInput(Number(state.from));
      $('range-to').value = toLocalInput(state.to ? Number(state.to) : Math.floor(Date.now() / 1000));
    }
  }
  function zoomTo(centre, factor) {
    const span = state.range === 'custom' && state.from ? (Number(state.to || Date.now() / 1000) - Number(state.from))
      : state.range === 'all' && meta.database.oldest ? Date.now() / 1000 - meta.database.oldest
        : (meta.ranges.find((r) => r.name === state.range) || { seconds: 86400 }).seconds;
    const next = Math.max(60, span * factor);
    const now = Date.now() / 1000;
    const to = Math.min(now + 1, centre + next / 2);
    go({ range: 'custom', from: String(Math.floor(to - next)), to: String(Math.ceil(to)) });
  }

  function dimOptions(sel, allowTime) {
    const sections = {};
    for (const d of meta.dimensions) {
      if (d.id === 'time' && !allowTime) continue;
      if (!sections[d.section]) { sections[d.section] = h('optgroup', { attrs: { label: d.section } }); sel.append(sections[d.section]); }
      sections[d.section].append(h('option', { text: d.label, attrs: { value: d.id } }));
    }
  }

  // ---- Overview ------------------------------------------------------------------------
  let generation = 0;
  async function loadOverview() {
    const gen = ++generation;
    $('ov-metric').value = state.metric; $('ov-by').value = state.by; $('ov-top').value = state.top;
    const p = new URLSearchParams();
    rangeParams(p);
    filterParams(p, state.filters);
    p.set('metric', state.metric); p.set('by', state.by); p.set('top', state.top);
    const chartBox = $('ov-chart');
    p.set('buckets', String(Math.max(20, Math.min(240, Math.floor((chartBox.clientWidth || 800) / 8)))));
    const r = await api('overview', p);
    if (gen !== generation) return;
    const totals = $('totals');
    clear(totals);
    if (r.error) {
      showProblem(r.error);
      clear(chartBox); clear($('ov-legend'));
      $('ov-note').textContent = '';
      return retryLater(r.error);
    }
    showProblem(null);
    const t = r.data.totals;
    const card = (id, label, value, text) => h('div', { class: 'card', data: { testid: 'total-' + id, value } },
      h('div', { class: 'label', text: label }), h('div', { class: 'value', text, title: fmtInt(value) + (id.match(/recv|send|total/) ? ' bytes' : '') }));
    totals.append(card('recv', 'Received', t.recv, fmtBytes(t.recv)), card('send', 'Sent', t.send, fmtBytes(t.send)), card('total', 'Total', t.total, fmtBytes(t.total)),
      card('connections', 'Connections', t.connections, fmtInt(t.connections)), card('executables', 'Executables', t.executables, fmtInt(t.executables)),
      card('namespaces', 'Network namespaces', t.namespaces, fmtInt(t.namespaces)));
    const c = r.data.chart;
    const layers = c.series.map((s, i) => ({ label: showValue(c.by, s.key, s.label), key: s.key, colour: PALETTE[i % PALETTE.length], values: s.values, total: s.total }));
    if (c.rest.count > 0) layers.push({ label: c.rest.count + ' other' + (c.rest.count === 1 ? '' : 's'), colour: restColour(), values: c.rest.values, total: c.rest.total, rest: true });
    stackedChart(chartBox, c, layers, meta.scroll_zoom ? zoomTo : null);
    const legend = $('ov-legend');
    clear(legend);
    for (const L of layers) {
      const sw = h('span', { class: 'swatch' });
      sw.style.background = L.colour;
      const label = L.rest ? h('span', { text: L.label }) : h('button', {
        text: L.label, title: 'Explore ' + L.label,
        on: { click: () => go({ view: 'explore', group: c.by, filters: state.filters, drill: { group: c.by, key: String(L.key) } }) },
      });
      legend.append(h('li', { data: { testid: 'legend-item', value: L.total } }, sw, label, h('span', { class: 'muted', text: fmtBytes(L.total) })));
    }
    $('ov-note').textContent = 'Buckets of ' + durationText(c.width) + ' from ' + fmtTime(r.data.range.start, 60) + '. ' + (meta.scroll_zoom ? 'Scroll over the chart to zoom. ' : '')
      + 'Answered in ' + r.data.elapsed_ms.toFixed(0) + ' ms.' + feedNote();
  }
  function feedNote() {
    return meta.feed && meta.feed.state !== 'connected' && meta.feed.state !== 'starting' ? ' Live feed: ' + meta.feed.message : '';
  }
  let retryTimer = null;
  function retryLater(err) {
    if (!['database-missing', 'database-locked', 'busy', 'offline', 'database-permission'].includes(err.kind)) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(route, 5000);
  }

  // ---- Explore -----------------------------------------------------------------------------
  const COLUMNS = [['recv', 'Received'], ['send', 'Sent'], ['total', 'Total'], ['events', 'Connections']];
  let exploreRows = [];
  let exploreData = null;
  function renderFilters() {
    const ul = $('ex-filters');
    clear(ul);
    state.filters.forEach((f, i) => {
      const d = dims[f.dim] || { label: f.dim };
      const text = d.label + (f.exclude ? ' is not ' : ' is ') + (f.dim === 'time' ? fmtTime(Number(f.value.split('/')[0]), Number(f.value.split('/')[1])) : f.value === '' ? '(none)' : f.value);
      ul.append(h('li', { data: { testid: 'filter-chip' }, title: text }, h('span', { text }),
        h('button', { text: '×', attrs: { 'aria-label': 'remove filter ' + text }, on: { click: () => go({ filters: state.filters.filter((_, j) => j !== i), drill: null }) } })));
    });
  }
  async function loadExplore(append) {
    const gen = ++generation;
    $('ex-group').value = state.group;
    if (document.activeElement !== $('ex-find')) $('ex-find').value = state.q;
    renderFilters();
    const p = new URLSearchParams();
    rangeParams(p);
    filterParams(p, state.filters);
    p.set('group', state.group); p.set('sort', state.sort); p.set('order', state.order);
    if (state.q) p.set('q', state.q);
    p.set('limit', '200'); p.set('offset', append ? String(exploreRows.length) : '0');
    const r = await api('explore', p);
    if (gen !== generation) return;
    if (r.error) {
      showProblem(r.error);
      clear($('ex-body')); clear($('ex-foot'));
      $('ex-note').textContent = '';
      return retryLater(r.error);
    }
    showProblem(null);
    exploreData = r.data;
    exploreRows = append ? exploreRows.concat(r.data.rows) : r.data.rows;
    renderTable();
    $('ex-note').textContent = fmtInt(r.data.row_count) + ' values; answered in ' + r.data.elapsed_ms.toFixed(0) + ' ms'
      + (r.data.used_summaries ? ' from the hourly and daily summaries.' : ' from the connections themselves.');
    if (state.drill && !append) openDrill(state.drill.group, state.drill.key); else if (!state.drill) closeDrill();
  }
  function renderTable() {
    const d = dims[state.group];
    const head = $('ex-head');
    clear(head);
    const sortButton = (key, label, numeric) => {
      const active = state.sort === key;
      const arrow = active ? (state.order === 'asc' ? ' ▲' : ' ▼') : '';
      return h('th', { class: numeric ? 'num' : '', attrs: { 'aria-sort': active ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none' } },
        h('button', { data: { testid: 'sort-' + key }, on: { click: () => go({ sort: key, order: active ? (state.order === 'asc' ? 'desc' : 'asc') : key === 'key' ? 'asc' : 'desc' }) } }, label, h('span', { class: 'arrow', text: arrow })));
    };
    head.append(sortButton('key', d.label, false), ...COLUMNS.map(([k, l]) => sortButton(k, l, true)), h('th', { class: 'acts', text: '' }));
    const body = $('ex-body');
    clear(body);
    const width = exploreData.time_width;
    for (const row of exploreRows) {
      const key = keyParam(state.group, row.key, width);
      const text = showValue(state.group, row.key, row.label, width);
      const selected = state.drill && state.drill.group === state.group && state.drill.key === key;
      const tr = h('tr', { class: selected ? 'selected' : '', data: { testid: 'ex-row', key }, title: 'Details of ' + text, on: { click: () => go({ drill: { group: state.group, key } }) } },
        h('td', { class: 'value', text }),
        ...COLUMNS.map(([k]) => h('td', { class: 'num', data: { col: k, value: row[k] }, title: fmtInt(row[k]), text: k === 'events' ? fmtInt(row[k]) : fmtBytes(row[k]) })),
        h('td', { class: 'acts' },
          h('button', { text: '=', title: 'only ' + text, data: { testid: 'filter-is' }, on: { click: (e) => { e.stopPropagation(); addFilter(state.group, key, false); } } }),
          ' ',
          h('button', { text: '≠', title: 'all but ' + text, data: { testid: 'filter-not' }, on: { click: (e) => { e.stopPropagation(); addFilter(state.group, key, true); } } })));
      body.append(tr);
    }
    const foot = $('ex-foot');
    clear(foot);
    const t = exploreData.totals;
    foot.append(h('tr', { data: { testid: 'ex-totals' } }, h('td', { text: fmtInt(exploreData.row_count) + ' values' }),
      ...COLUMNS.map(([k]) => h('td', { class: 'num', data: { value: t[k] }, text: k === 'events' ? fmtInt(t[k]) : fmtBytes(t[k]) })), h('td')));
    $('ex-more').hidden = exploreRows.length >= exploreData.row_count;
    if (!exploreRows.length) body.append(h('tr', null, h('td', { attrs: { colspan: 6 }, class: 'muted', text: 'No connections in this range' + (state.filters.length ? ' with these filters.' : '.') })));
  }
  function addFilter(dim, value, exclude) {
    const filters = state.filters.filter((f) => !(f.dim === dim && f.value === value));
    filters.push({ dim, value, exclude });
    // Keeping one value of the grouped dimension leaves one row: show what is inside.
    const group = !exclude && dim === state.group ? (dim === 'exe' || dim === 'name' ? 'domain' : 'exe') : state.group;
    go({ filters, group, drill: null });
  }
  function closeDrill() {
    $('drill').hidden = true;
    document.querySelector('.explore').classList.remove('with-drill');
  }
  let drillGen = 0;
  async function openDrill(group, key, full) {
    const gen = ++drillGen;
    const pane = $('drill');
    pane.hidden = false;
    document.querySelector('.explore').classList.add('with-drill');
    clear(pane);
    const d = dims[group] || { label: group };
    const row = exploreRows.find((r) => keyParam(group, r.key, exploreData.time_width) === key);
    const title = group === 'time' ? fmtTime(Number(key.split('/')[0]), Number(key.split('/')[1])) : row ? showValue(group, row.key, row.label) : key === '' ? '(none)' : key;
    pane.append(h('button', { class: 'close ghost', text: '×', attrs: { 'aria-label': 'close details' }, on: { click: () => go({ drill: null }) } }),
      h('div', { class: 'muted', text: d.label }), h('h3', { text: title, data: { testid: 'drill-title' } }),
      h('div', { class: 'controls' },
        h('button', { text: 'Only this', data: { testid: 'drill-filter' }, on: { click: () => addFilter(group, key, false) } }),
        h('button', { text: 'All but this', on: { click: () => addFilter(group, key, true) } })),
      h('p', { class: 'muted', text: 'Loading…', data: { testid: 'drill-loading' } }));
    const p = new URLSearchParams();
    rangeParams(p);
    filterParams(p, state.filters);
    p.set('group', group); p.set('key', key); p.set('metric', state.sort === 'send' || state.sort === 'recv' ? state.sort : 'total');
    const c = new URLSearchParams(p);
    c.delete('group'); c.delete('key'); c.delete('metric');
    if (group === 'time') {
      const [s, w] = key.split('/').map(Number);
      c.delete('range'); c.delete('from'); c.delete('to');
      const r0 = state.range === 'custom' && state.from ? [Number(state.from), Number(state.to || 1e12)] : [0, 1e12];
      c.set('from', String(Math.max(s, r0[0]))); c.set('to', String(Math.min(s + w, r0[1])));
    } else {
      c.append('f', group + ':' + key);
    }
    c.set('limit', '50');
    if (full) { p.set('full', '1'); c.set('full', '1'); }
    const [dr, cr] = await Promise.all([api('drilldown', p), api('connections', c)]);
    if (gen !== drillGen) return;
    pane.querySelector('[data-testid="drill-loading"]').remove();
    if (dr.error) { pane.append(h('p', { class: 'banner', text: dr.error.error })); return; }
    const t = dr.data.totals;
    const cov = dr.data.coverage;
    if (!cov.complete) {
      pane.append(h('p', { class: 'note', data: { testid: 'drill-partial' } },
        'Counted back to ' + fmtTime(cov.from, 60) + ' (the newest part of the range, to answer quickly)' + (dr.data.totals_exact ? '; the totals and the chart cover it all. ' : '. '),
        h('button', { text: 'Count the whole range', data: { testid: 'drill-full' }, on: { click: () => openDrill(group, key, true) } })));
    }
    pane.append(h('p', { data: { testid: 'drill-totals' } },
      h('span', { data: { testid: 'drill-recv', value: t.recv }, text: 'received ' + fmtBytes(t.recv) }), ' · ',
      h('span', { data: { testid: 'drill-send', value: t.send }, text: 'sent ' + fmtBytes(t.send) }), ' · ',
      h('span', { data: { testid: 'drill-events', value: t.events }, text: fmtInt(t.events) + ' connections' })));
    pane.append(sparkline(dr.data.sparkline));
    for (const [id, label] of [['user', 'Users'], ['domain', 'Domains'], ['raddr', 'Remote addresses']]) {
      const b = dr.data.breakdowns[id];
      const tb = h('tbody');
      for (const r of b.rows) {
        tb.append(h('tr', { data: { testid: 'drill-' + id + '-row', key: String(r.key), recv: r.recv, send: r.send } },
          h('td', { class: 'value', text: showValue(id, r.key, r.label) }), h('td', { class: 'num', text: fmtBytes(r.recv) }),
          h('td', { class: 'num', text: fmtBytes(r.send) }), h('td', { class: 'num', text: fmtInt(r.events) })));
      }
      if (b.rest.count > 0) tb.append(h('tr', { class: 'muted' }, h('td', { text: fmtInt(b.rest.count) + ' more' }), h('td', { class: 'num', text: fmtBytes(b.rest.recv) }), h('td', { class: 'num', text: fmtBytes(b.rest.send) }), h('td', { class: 'num', text: fmtInt(b.rest.events) })));
      pane.append(h('h2', { text: label }), h('div', { class: 'table-wrap' }, h('table', { class: 'rows', data: { testid: 'drill-' + id } },
        h('thead', null, h('tr', null, h('th', { text: (dims[id] || {}).label || id }), h('th', { class: 'num', text: 'Received' }), h('th', { class: 'num', text: 'Sent' }), h('th', { class: 'num', text: 'Conn.' }))), tb)));
    }
    pane.append(h('h2', { text: 'Latest connections' }));
    if (cr.error) { pane.append(h('p', { class: 'banner', text: cr.error.error })); return; }
    if (!cr.data.coverage.complete) pane.append(h('p', { class: 'note', text: 'Searched back to ' + fmtTime(cr.data.coverage.from, 60) + '.' }));
    const lb = h('tbody');
    for (const x of cr.data.rows) {
      const remote = (x.domain ? x.domain + ' ' : '') + (x.raddr ? (x.raddr.includes(':') ? '[' + x.raddr + ']' : x.raddr) + (x.rport ? ':' + x.rport : '') : '');
      lb.append(h('tr', { data: { testid: 'drill-conn', exe: x.exe } },
        h('td', { text: fmtTime(x.contime, 1), title: 'row of the write period starting then' }),
        h('td', { class: 'value', text: x.name || x.exe, title: x.exe + (x.cmdline ? '\n' + x.cmdline : '') + (x.sha256 ? '\nsha256 ' + x.sha256 : '') }),
        h('td', { class: 'value', text: remote || '–', title: (PROTOCOLS[x.protocol] || 'protocol ' + x.protocol) + (x.lport ? ', local port ' + x.lport : '') + ', ' + (x.user || 'uid ' + x.uid) }),
        h('td', { class: 'num', text: fmtBytes(x.recv) }), h('td', { class: 'num', text: fmtBytes(x.send) })));
    }
    pane.append(h('div', { class: 'table-wrap' }, h('table', { class: 'rows', data: { testid: 'drill-connections' } },
      h('thead', null, h('tr', null, h('th', { text: 'Time' }), h('th', { text: 'Executable' }), h('th', { text: 'Remote' }), h('th', { class: 'num', text: 'Received' }), h('th', { class: 'num', text: 'Sent' }))), lb)));
  }
  $('ex-more').addEventListener('click', () => loadExplore(true));
  let findTimer = null;
  $('ex-find').addEventListener('input', () => {
    clearTimeout(findTimer);
    findTimer = setTimeout(() => go({ q: $('ex-find').value, drill: null }), 250);
  });

  // ---- Live ---------------------------------------------------------------------------------
  let liveSeq = 0;
  let liveEvents = [];
  let liveProcs = [];
  let livePaused = false;
  let liveTimer = null;
  const liveRates = new Map();
  function liveMatch(text, fields) {
    if (!text) return true;
    return fields.some((f) => String(f).toLowerCase().includes(text));
  }
  async function pollLive() {
    clearTimeout(liveTimer);
    if (state.view !== 'live') return;
    const p = new URLSearchParams({ after: String(liveSeq), limit: '500', top: '200' });
    // The server picks the busiest executables among those matching the filter.
    const q = $('live-find').value.trim();
    if (q) p.set('q', q);
    const r = await api('live', p);
    if (state.view !== 'live') return;
    const status = $('live-status');
    if (r.error) {
      status.className = 'status bad';
      status.textContent = r.error.error;
    } else {
      const d = r.data;
      status.className = 'status ' + (d.status.state === 'connected' ? 'ok' : 'bad');
      status.dataset.state = d.status.state;
      status.textContent = d.status.state === 'connected' ? 'Live: ' + fmtInt(d.seq) + ' updates since the web UI started' + (d.missed ? ' (' + fmtInt(d.missed) + ' not shown: they came too fast)' : '') : d.status.message;
      liveSeq = d.seq;
      liveEvents = d.events.slice().reverse().concat(liveEvents).slice(0, 500);
      const now = Date.now() / 1000;
      for (const pr of d.processes) {
        const k = pr.exe + '\u0000' + pr.name;
        const prev = liveRates.get(k);
        pr.rate = prev && now > prev.t ? { recv: (pr.recv - prev.recv) / (now - prev.t), send: (pr.send - prev.send) / (now - prev.t) } : { recv: 0, send: 0 };
        liveRates.set(k, { t: now, recv: pr.recv, send: pr.send });
      }
      liveProcs = d.processes;
      if (!livePaused) renderLive();
    }
    liveTimer = setTimeout(pollLive, 1000);
  }
  function renderLive() {
    const q = $('live-find').value.trim().toLowerCase();
    const procs = $('live-procs');
    clear(procs);
    for (const p of liveProcs.filter((p) => liveMatch(q, [p.name, p.exe, ...p.ports]))) {
      procs.append(h('tr', { data: { testid: 'live-proc', exe: p.exe, recv: p.recv, send: p.send } },
        h('td', { class: 'value', title: p.exe }, h('strong', { text: p.name || '?' }), ' ', h('span', { class: 'muted', text: p.exe })),
        h('td', { class: 'num', text: fmtInt(p.connections) }), h('td', { class: 'num', text: fmtInt(p.open) }),
        h('td', { class: 'num', text: fmtBytes(p.recv) }), h('td', { class: 'num', text: fmtBytes(p.send) }),
        h('td', { class: 'num', text: fmtBytes(p.rate.recv) + '/s · ' + fmtBytes(p.rate.send) + '/s' }),
        h('td', { text: p.ports.join(', ') })));
    }
    const body = $('live-body');
    clear(body);
    for (const e of liveEvents.filter((e) => liveMatch(q, [e.name, e.exe, e.domain, e.raddr, e.rport, e.lport, e.laddr, e.pname])).slice(0, 300)) {
      const remote = (e.domain ? e.domain + ' ' : '') + (e.raddr || '') + (e.rport ? ':' + e.rport : '');
      body.append(h('tr', { data: { testid: 'live-event', exe: e.exe, kind: e.kind } },
        h('td', { text: fmtClock(e.time) }), h('td', { text: e.kind + (e.direction ? ' ' + e.direction : '') }),
        h('td', { class: 'value', title: e.exe + (e.cmdline ? '\n' + e.cmdline : '') + '\npid ' + e.pid }, e.name || e.exe),
        h('td', { class: 'value', text: remote || '–' }), h('td', { class: 'value', text: (e.laddr || '') + (e.lport ? ':' + e.lport : '') }),
        h('td', { class: 'num', text: fmtBytes(e.recv) }), h('td', { class: 'num', text: fmtBytes(e.send) })));
    }
  }
  $('live-find').addEventListener('input', () => { renderLive(); pollLive(); });
  $('live-pause').addEventListener('click', () => {
    livePaused = !livePaused;
    $('live-pause').textContent = livePaused ? 'Resume' : 'Pause';
    if (!livePaused) renderLive();
  });

  // ---- routing ----------------------------------------------------------------------------------
  let loadedKey = null;
  function route() {
    readHash();
    clearTimeout(retryTimer);
    // Opening or closing a row's details keeps the table as it is.
    const key = hashFor({ drill: null });
    if (state.view === 'explore' && key === loadedKey && exploreData && $('view-explore').hidden === false) {
      for (const tr of document.querySelectorAll('#ex-body tr')) tr.classList.toggle('selected', !!state.drill && tr.dataset.key === state.drill.key);
      if (state.drill) openDrill(state.drill.group, state.drill.key); else closeDrill();
      return;
    }
    loadedKey = key;
    for (const v of ['overview', 'explore', 'live']) {
      $('view-' + v).hidden = v !== state.view;
      document.querySelector(`.tabs a[data-view="${v}"]`).classList.toggle('active', v === state.view);
    }
    $('range-picker').hidden = state.view === 'live';
    syncRange();
    hideTip();
    if (state.view === 'overview') loadOverview();
    else if (state.view === 'explore') loadExplore(false);
    else { showProblem(null); pollLive(); }
  }

  async function start() {
    applyTheme();
    const r = await api('meta', new URLSearchParams());
    if (r.error) {
      showProblem(r.error);
      setTimeout(start, 5000);
      return;
    }
    meta = r.data;
    applyTheme();
    for (const d of meta.dimensions) dims[d.id] = d;
    setupRange();
    dimOptions($('ov-by'), false);
    dimOptions($('ex-group'), true);
    $('ov-metric').addEventListener('change', () => go({ metric: $('ov-metric').value }));
    $('ov-by').addEventListener('change', () => go({ by: $('ov-by').value }));
    $('ov-top').addEventListener('change', () => go({ top: $('ov-top').value }));
    $('ex-group').addEventListener('change', () => go({ group: $('ex-group').value, drill: null, q: '', sort: 'total', order: 'desc' }));
    window.addEventListener('hashchange', route);
    let resize = null;
    window.addEventListener('resize', () => { clearTimeout(resize); resize = setTimeout(() => { if (state.view === 'overview') loadOverview(); }, 300); });
    document.body.dataset.ready = '1';
    route();
  }
  start();
})();
