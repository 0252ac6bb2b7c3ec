// queuerctl web: the console's one script (compiled into queuerctl; no framework, no build).
//
// - Live updates: one EventSource on /events. The server coalesces notifications into at most
//   two "change" events a second; here a change that concerns this page (body data-channels)
//   marks it dirty, and the live region is fetched again (same URL, header X-Partial: 1) at most
//   once a second, never twice at the same time, and not while the tab is hidden.
// - Ages ("12 s") keep counting between refreshes.
// - Actions: buttons with data-action POST to /api/... with the token in X-Queuerd-Token. The
//   token comes from the URL's #token=... (then removed from the address bar and kept in this
//   tab's sessionStorage only) or is asked for once. Bulk actions count first (dry run).
// Nothing here writes data into the page as HTML: server fragments are already escaped, and
// everything else goes through textContent.
(() => {
  'use strict';
  const TOKEN_KEY = 'queuerd-web-token';
  const MIN_REFRESH_MS = 1000;
  const body = document.body;
  const live = document.getElementById('live');
  const conn = document.getElementById('conn');
  const banner = document.getElementById('banner');
  const channels = (body.dataset.channels || '').split(' ').filter(Boolean);

  // ---- the token ----
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    try { sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1])); } catch (e) { /* private mode */ }
    history.replaceState(null, '', location.pathname + location.search);
  }
  const getToken = () => { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } };
  const setToken = (t) => { try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ } };

  // ---- ages ----
  let renderedAt = performance.now();
  function fmtAge(s) {
    if (s < 120) return Math.floor(s) + ' s';
    if (s < 7200) return Math.floor(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }
  function tick() {
    const dt = (performance.now() - renderedAt) / 1000;
    for (const el of document.querySelectorAll('.age[data-age]')) {
      const t = fmtAge(parseFloat(el.dataset.age) + dt);
      if (el.textContent !== t) el.textContent = t;
    }
  }
  setInterval(tick, 1000);

  // ---- live region refresh ----
  let dirty = false, inflight = false, lastRefresh = 0, timer = 0;
  body.dataset.refreshes = '0';
  function schedule() {
    dirty = true;
    if (inflight || timer || !live) return;
    const wait = Math.max(0, MIN_REFRESH_MS - (performance.now() - lastRefresh));
    timer = setTimeout(refresh, wait);
  }
  async function refresh() {
    timer = 0;
    if (document.hidden) return; // picked up again on visibilitychange
    dirty = false;
    inflight = true;
    lastRefresh = performance.now();
    try {
      const r = await fetch(location.pathname + location.search, {
        headers: { 'X-Partial': '1' }, cache: 'no-store', credentials: 'same-origin',
      });
      if (r.ok || r.status === 404) {
        const html = await r.text();
        live.innerHTML = html; // rendered and escaped by the server
        renderedAt = performance.now();
        body.dataset.refreshes = String(Number(body.dataset.refreshes) + 1);
      }
    } catch (e) {
      // The server went away; the event stream reports it.
    } finally {
      inflight = false;
      if (dirty) schedule();
    }
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden && dirty) schedule(); });

  function setConn(state, text) {
    if (!conn) return;
    conn.dataset.state = state;
    conn.textContent = text;
  }
  function showBanner(text) {
    if (!banner) return;
    banner.textContent = text;
    banner.hidden = !text;
  }
  if (window.EventSource && channels.length) {
    const es = new EventSource('/events');
    es.addEventListener('open', () => setConn('live', 'live'));
    es.addEventListener('error', () => setConn('offline', 'reconnecting'));
    es.addEventListener('db', (ev) => {
      const d = JSON.parse(ev.data);
      showBanner(d.up ? '' : 'The database cannot be reached; live updates resume when it is back. (' + d.error + ')');
      if (d.up) setConn('live', 'live');
    });
    es.addEventListener('change', (ev) => {
      const d = JSON.parse(ev.data);
      body.dataset.changes = String(Number(body.dataset.changes || 0) + 1);
      if (channels.some((c) => d[c] > 0)) schedule();
    });
    window.addEventListener('pagehide', () => es.close());
  } else {
    setConn('offline', 'no live updates');
  }
  // A new minute moves the overview's chart window even when nothing happens.
  if (body.dataset.channels && location.pathname === '/') {
    setInterval(() => { if (new Date().getSeconds() === 0) schedule(); }, 1000);
  }

  // ---- toast ----
  const toastEl = document.getElementById('toast');
  let toastTimer = 0;
  function toast(text, isError) {
    if (!toastEl) return;
    toastEl.textContent = text;
    toastEl.classList.toggle('error', !!isError);
    toastEl.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toastEl.classList.remove('show'), isError ? 8000 : 4000);
  }

  // ---- the dialog: a question, and the token when we have none ----
  const dlg = document.getElementById('dlg');
  function ask(text, needToken, error) {
    return new Promise((resolve) => {
      if (!dlg || !dlg.showModal) { // very old browsers
        const t = needToken ? window.prompt(text + '\n\nToken:') : (window.confirm(text) ? getToken() : null);
        resolve(t === null ? null : { token: t || getToken() });
        return;
      }
      document.getElementById('dlg-text').textContent = text;
      const tokenBox = document.getElementById('dlg-token');
      const input = document.getElementById('dlg-token-input');
      const err = document.getElementById('dlg-error');
      tokenBox.hidden = !needToken;
      input.value = '';
      err.textContent = error || '';
      err.hidden = !error;
      const done = () => {
        dlg.removeEventListener('close', done);
        if (dlg.returnValue !== 'ok') return resolve(null);
        resolve({ token: needToken ? input.value.trim() : getToken() });
      };
      dlg.returnValue = '';
      dlg.addEventListener('close', done);
      dlg.showModal();
      (needToken ? input : document.getElementById('dlg-ok')).focus();
    });
  }

  async function post(url, data, token) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'X-Queuerd-Token': token, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: data,
      credentials: 'omit',
      cache: 'no-store',
    });
    let j;
    try { j = await r.json(); } catch (e) { j = { ok: false, error: 'HTTP ' + r.status }; }
    j.status = r.status;
    return j;
  }

  async function act(btn) {
    const url = btn.dataset.action;
    const data = btn.dataset.body || '';
    let question = btn.dataset.confirm || 'Are you sure?';
    let token = getToken();
    let error = '';
    btn.disabled = true;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        if (btn.dataset.bulk) {
          if (!token) {
            const a = await ask('This action needs the token printed by queuerctl web at start.', true, error);
            if (!a) return;
            token = a.token;
          }
          const count = await post(url, data + (data ? '&' : '') + 'dry_run=1', token);
          if (count.status === 403 && count.reason === 'token') { setToken(''); token = ''; error = count.error; continue; }
          if (!count.ok) { toast(count.error || 'failed', true); return; }
          if (count.count === 0) { toast('No jobs match: nothing to do.'); return; }
          question = btn.dataset.confirm + ' (' + count.message + ')';
          const a = await ask(question, false, '');
          if (!a) return;
        } else {
          const a = await ask(question, !token, error);
          if (!a) return;
          token = a.token;
        }
        const res = await post(url, data, token);
        if (res.status === 403 && res.reason === 'token') { setToken(''); token = ''; error = res.error; continue; }
        if (!res.ok) { toast(res.error || 'failed', true); return; }
        setToken(token);
        toast(res.message || 'Done');
        if (res.location) { location.assign(res.location); return; }
        schedule();
        return;
      }
    } catch (e) {
      toast('The console cannot be reached: ' + e.message, true);
    } finally {
      btn.disabled = false;
    }
  }
  document.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[data-action]');
    if (!btn) return;
    ev.preventDefault();
    if (body.dataset.readonly === '1') return;
    act(btn);
  });
})();
