// Events on the viewer page: the newest events (GET /api/v1/events), then each new one live
// as the OmniSight WebSocket sends it (`event` messages of the cameras it subscribed to).
// Each shows its thumbnail with the detected boxes drawn over it (GET /events/:id gives the
// boxes in pixels of the camera frame, `frameSize` that frame), its type, confidence, camera
// and time. Filters by camera and type; a click jumps to the recording at that moment
// (recordings.js's `seek`).
//
// Loaded before viewer.js, which calls `vasEventsPanel({...})` once per sign-in with its HTTP
// helpers and a getter of the current access token (the token stays in viewer.js's closure;
// the WebSocket sends it as a subprotocol, never in the URL). Everything from the API goes on
// the page as text, never as HTML.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const BASE = '/api/v1';
  const LIST_LIMIT = 50;
  const SHOWN = 50; // items kept on the page (newest first)
  const RECONNECT_MS = 2000;
  const TYPES = ['motion', 'person', 'vehicle', 'animal', 'custom'];

  window.vasEventsPanel = ({ api, apiBlob, act, say, scopes, accessToken, recordings }) => {
    const can = (scope) => scopes.includes('admin') || scopes.includes(scope);
    const events = new Map(); // id -> {summary, detail, source, element}
    const urls = new Set();
    let cameras = []; // [{id, name}]
    let socket = null;
    let closed = false;
    let retry = null;

    function filters() {
      return { cameraId: $('events-camera').value, type: $('events-type').value };
    }

    function matches(summary) {
      const { cameraId, type } = filters();
      return (!cameraId || summary.cameraId === cameraId) && (!type || summary.type === type);
    }

    function when(iso) {
      return new Date(iso).toLocaleString();
    }

    // --- the list ---------------------------------------------------------------------------

    // Boxes as elements over the thumbnail, placed in % of the camera frame they refer to.
    function drawBoxes(figure, detail) {
      for (const old of figure.querySelectorAll('.box')) old.remove();
      const frame = detail.frameSize;
      if (!frame) return;
      for (const object of detail.detectedObjects ?? []) {
        const b = object.boundingBox;
        const box = document.createElement('div');
        box.className = `box box-${object.type}`;
        box.title = `${object.type} ${Math.round(object.confidence * 100)} %`;
        box.style.left = `${(100 * b.x) / frame.width}%`;
        box.style.top = `${(100 * b.y) / frame.height}%`;
        box.style.width = `${(100 * b.width) / frame.width}%`;
        box.style.height = `${(100 * b.height) / frame.height}%`;
        box.dataset.box = JSON.stringify([b.x, b.y, b.width, b.height]);
        figure.append(box);
      }
      figure.dataset.boxes = String(figure.querySelectorAll('.box').length);
    }

    function item(summary, source) {
      const li = document.createElement('li');
      li.id = `event-${summary.id}`;
      li.className = `event event-${summary.type}`;
      li.dataset.eventId = summary.id;
      li.dataset.cameraId = summary.cameraId;
      li.dataset.type = summary.type;
      li.dataset.source = source;
      li.tabIndex = 0;
      li.title = 'Play the recording at this moment';
      const figure = document.createElement('figure');
      figure.className = 'event-thumb';
      const caption = document.createElement('p');
      caption.className = 'event-text';
      const confidence = Math.round((summary.confidence ?? 0) * 100);
      caption.textContent = `${summary.type} · ${confidence} % · ${summary.cameraName || 'camera ' + summary.cameraId.slice(0, 8)}`
        + ` · ${when(summary.timestamp)}`;
      li.append(figure, caption);
      const jump = () => act('event-jump', () => jumpTo(summary.id));
      li.addEventListener('click', jump);
      li.addEventListener('keydown', (e) => { if (e.key === 'Enter') jump(); });
      return li;
    }

    // The thumbnail (a blob URL: it needs the token) and the boxes, once per event.
    async function decorate(entry) {
      const figure = entry.element.querySelector('figure');
      if (entry.summary.thumbnailPath) {
        const img = document.createElement('img');
        img.alt = `${entry.summary.type} event`;
        const url = URL.createObjectURL(await apiBlob(BASE + entry.summary.thumbnailPath));
        urls.add(url);
        entry.url = url;
        img.src = url;
        figure.prepend(img);
        await img.decode().catch(() => {});
      } else {
        figure.classList.add('no-thumbnail');
      }
      entry.detail = await api(`${BASE}/events/${entry.summary.id}`);
      drawBoxes(figure, entry.detail);
      entry.element.dataset.ready = 'true';
    }

    function add(summary, source) {
      if (events.has(summary.id)) return;
      const entry = { summary, detail: null, source, element: item(summary, source) };
      events.set(summary.id, entry);
      decorate(entry).catch((error) => { entry.element.dataset.error = String(error.message ?? error); });
      render();
    }

    function render() {
      const sorted = [...events.values()].sort(
        (a, b) => Date.parse(b.summary.timestamp) - Date.parse(a.summary.timestamp));
      for (const entry of sorted.slice(SHOWN)) {
        events.delete(entry.summary.id);
        if (entry.url) {
          URL.revokeObjectURL(entry.url);
          urls.delete(entry.url);
        }
      }
      const shown = sorted.slice(0, SHOWN).filter((entry) => matches(entry.summary));
      $('events-list').replaceChildren(...shown.map((entry) => entry.element));
      $('events-count').textContent = `${shown.length} shown`;
    }

    async function load() {
      const { cameraId, type } = filters();
      const query = new URLSearchParams({ limit: String(LIST_LIMIT) });
      if (cameraId) query.set('cameraId', cameraId);
      if (type) query.set('type', type);
      const page = await api(`${BASE}/events?${query}`);
      for (const summary of page.events) add(summary, 'list');
      render();
    }

    async function loadCameras() {
      if (!can('cameras:read')) return;
      const page = await api(`${BASE}/cameras?limit=100`);
      cameras = page.cameras.map((c) => ({ id: c.id, name: c.name }));
      const select = $('events-camera');
      const chosen = select.value;
      const options = [new Option('All cameras', '')];
      for (const camera of cameras) options.push(new Option(camera.name, camera.id));
      select.replaceChildren(...options);
      select.value = cameras.some((c) => c.id === chosen) ? chosen : '';
      subscribeAll();
    }

    // --- jumping to the recording -----------------------------------------------------------

    async function jumpTo(id) {
      const entry = events.get(id);
      const detail = entry?.detail ?? await api(`${BASE}/events/${id}`);
      for (const el of document.querySelectorAll('#events-list .event.chosen')) el.classList.remove('chosen');
      entry?.element.classList.add('chosen');
      if (!detail.recording) {
        say(`No recording holds this ${detail.type} event's moment.`);
        return;
      }
      await recordings.seek(detail.cameraId, detail.recording.id, Date.parse(detail.timestamp));
    }

    // --- live: the WebSocket ----------------------------------------------------------------

    function subscribeAll() {
      if (!socket || socket.readyState !== WebSocket.OPEN) return;
      for (const camera of cameras) {
        socket.send(JSON.stringify({ type: 'subscribe', channel: 'camera_events', data: { cameraId: camera.id } }));
      }
      // Commands are handled in order: the answer to this confirms the subscriptions.
      socket.send(JSON.stringify({ type: 'heartbeat' }));
    }

    function connect() {
      if (closed || !can('events:read')) return;
      const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${BASE}/ws`;
      const ws = new WebSocket(url, ['bearer', accessToken()]);
      socket = ws;
      $('events-panel').dataset.live = 'connecting';
      ws.addEventListener('open', subscribeAll);
      ws.addEventListener('message', (message) => {
        let parsed;
        try {
          parsed = JSON.parse(message.data);
        } catch {
          return;
        }
        if (parsed.type === 'heartbeat_ack') $('events-panel').dataset.live = 'subscribed';
        if (parsed.type === 'event') add(parsed.data, 'live');
      });
      ws.addEventListener('close', () => {
        if (socket !== ws) return;
        socket = null;
        $('events-panel').dataset.live = 'closed';
        // The token expired (4401) or the server restarted: again with the current token.
        if (!closed) retry = setTimeout(connect, RECONNECT_MS);
      });
    }

    // --- lifecycle --------------------------------------------------------------------------

    async function start() {
      if (!can('events:read')) return;
      $('events-panel').hidden = false;
      $('events-type').replaceChildren(new Option('All types', ''), ...TYPES.map((t) => new Option(t, t)));
      await loadCameras();
      connect();
      await load();
    }

    function stop() {
      closed = true;
      clearTimeout(retry);
      if (socket) socket.close();
      socket = null;
      for (const url of urls) URL.revokeObjectURL(url);
      urls.clear();
      events.clear();
      $('events-list').replaceChildren();
      $('events-panel').hidden = true;
      delete $('events-panel').dataset.live;
    }

    const refilter = () => act('events', async () => { render(); await load(); });
    $('events-camera').onchange = refilter;
    $('events-type').onchange = refilter;
    $('events-reload').onclick = () => act('events', async () => { await loadCameras(); await load(); });
    return { start, stop };
  };
})();
