// The VAS viewer, served at `/`: sign in, devices and streams, live video over WHEP,
// snapshots, bookmarks and stream health. Plain JS on the browser's own APIs; no libraries.
//
// The access and refresh tokens live only in `session`, inside this closure: never in
// localStorage, sessionStorage, cookies or a URL (integration guide §7), and not on
// `window` either. Every call sends them in the Authorization header. Everything the API
// returns is put on the page with textContent, never as HTML, so that a device name cannot
// run script next to the token.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  // The recordings panel's factory (recordings.js): taken off `window`, given our helpers.
  const makeRecordings = window.vasRecordingsPanel;
  delete window.vasRecordingsPanel;

  const HEALTH_EVERY_MS = 2000;
  // Bounds our own waits, so that a lost answer cannot leave a button disabled forever.
  const GATHERING_LIMIT_MS = 5000;
  const SNAPSHOT_LIMIT_MS = 30000;
  // A live clip can only be cut once its end has been recorded and its last segment closed.
  const BOOKMARK_GRACE_MS = 60000;

  let session = null; // {clientId, user, scopes, accessToken, refreshToken, refreshTimer}
  let refreshing = null; // the refresh in flight, shared by every caller that needs it
  let selected = null; // the stream shown: {id, cameraId, healthUrl, state, timer, polling}
  let whep = null; // the live WHEP session: {streamId, pc, location}
  const busy = new Set(); // actions in flight: a second click is ignored until done (guide §7)
  let recordings = null; // the recordings panel (recordings.js), made at sign-in
  const blobUrls = new Map(); // element id -> object URL, revoked when replaced

  // --- messages ---------------------------------------------------------------------------

  function say(text) {
    $('status').textContent = text;
  }

  // An answer of the API other than 2xx, with the guide's `detail` (string or object).
  class ApiError extends Error {
    constructor(status, detail) {
      const structured = detail && typeof detail === 'object' && !Array.isArray(detail);
      const message = structured ? detail.message ?? JSON.stringify(detail) : String(detail);
      super(message);
      this.status = status;
      this.code = structured ? detail.error_code ?? null : null;
      this.more = structured ? detail.detail ?? null : null;
    }

    describe() {
      const head = this.code ? `${this.code} (HTTP ${this.status})` : `HTTP ${this.status}`;
      return `${head}: ${this.message}${this.more ? ` — ${this.more}` : ''}`;
    }
  }

  function showError(error) {
    const box = $('error');
    box.textContent = error instanceof ApiError ? error.describe() : String(error.message ?? error);
    box.dataset.code = error.code ?? '';
    box.dataset.status = error.status ?? '';
    box.hidden = false;
  }

  function clearError() {
    const box = $('error');
    box.hidden = true;
    box.textContent = '';
    box.dataset.code = '';
    box.dataset.status = '';
  }

  // --- HTTP -------------------------------------------------------------------------------

  async function errorOf(response) {
    let detail = response.statusText || 'request failed';
    try {
      const body = await response.json();
      // The VAS family answers {detail}; the OmniSight one {error: {code, message, details}}.
      detail = body.error ? { error_code: body.error.code, message: body.error.message }
        : body.detail ?? detail;
    } catch {
      // not JSON (a proxy's page, an empty body): keep the status text
    }
    return new ApiError(response.status, detail);
  }

  // fetch with the Bearer header. A 401 is answered once by refreshing the tokens and
  // sending the request again (guide §2.6): the access token may have expired meanwhile.
  async function request(path, { method = 'GET', json, body, headers = {}, retry = true } = {}) {
    const sent = { ...headers };
    if (session) sent.Authorization = `Bearer ${session.accessToken}`;
    if (json !== undefined) {
      sent['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    }
    const response = await fetch(path, { method, headers: sent, body, cache: 'no-store' });
    if (response.status === 401 && retry && session) {
      await refreshTokens();
      return request(path, { method, body, headers: sent, retry: false });
    }
    return response;
  }

  // The parsed JSON body (null for 204), or an ApiError.
  async function api(path, options) {
    const response = await request(path, options);
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json();
  }

  async function apiBlob(path) {
    const response = await request(path);
    if (!response.ok) throw await errorOf(response);
    return response.blob();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Poll a snapshot or bookmark until its job made it: `ready` returns it, `failed` throws.
  async function untilReady(path, deadline, everyMs) {
    for (;;) {
      const item = await api(path);
      if (item.status === 'ready') return item;
      if (item.status === 'failed') throw new Error(`${path} failed: ${item.error ?? 'no reason given'}`);
      if (Date.now() > deadline) throw new Error(`${path} still ${item.status}; giving up`);
      await sleep(everyMs);
    }
  }

  // --- session ----------------------------------------------------------------------------

  async function postJson(path, payload) {
    const response = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
      cache: 'no-store',
    });
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  async function signIn(clientId, clientSecret) {
    const tokens = await postJson('/v2/auth/token', { client_id: clientId, client_secret: clientSecret });
    session = { clientId, user: false, scopes: tokens.scopes ?? [], refreshTimer: null };
    adoptTokens(tokens);
  }

  // A user's sign-in (OmniSight API): the same kind of access token, its scopes from the
  // user's role; the answer names them only inside the token, so they are read from there.
  function userTokens(answer) {
    const part = answer.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    return {
      access_token: answer.token,
      refresh_token: answer.refreshToken,
      expires_in: claims.exp - claims.iat,
      scopes: (claims.scope ?? '').split(' ').filter(Boolean),
    };
  }

  async function signInUser(email, password) {
    const answer = await postJson('/api/v1/auth/login', { email, password });
    const tokens = userTokens(answer);
    session = { clientId: answer.user.email, user: true, scopes: tokens.scopes, refreshTimer: null };
    adoptTokens(tokens);
  }

  function postRefresh(current) {
    if (current.user) {
      return postJson('/api/v1/auth/refresh-token', { refreshToken: current.refreshToken })
        .then(userTokens);
    }
    return postJson('/v2/auth/token/refresh', { refresh_token: current.refreshToken });
  }

  function adoptTokens(tokens) {
    session.accessToken = tokens.access_token;
    session.refreshToken = tokens.refresh_token;
    clearTimeout(session.refreshTimer);
    // Guide §2.6: refresh once ~80% of the access token's lifetime has passed.
    const dueMs = tokens.expires_in * 1000 * 0.8;
    session.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}), dueMs);
  }

  // One refresh at a time: the server rotates the refresh token, so a second refresh with
  // the old one would fail and end a session that is fine.
  function refreshTokens() {
    if (!refreshing) {
      const current = session;
      refreshing = postRefresh(current)
        .then((tokens) => {
          if (session === current) adoptTokens(tokens);
        })
        .catch(async (error) => {
          if (session === current) {
            await endSession('Session ended: sign in again.');
            showError(error);
          }
          throw error;
        })
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  async function endSession(message) {
    if (!session) return;
    clearTimeout(session.refreshTimer);
    // Close the WHEP session while we still hold a token; no refresh on a 401 here, as this
    // may run because a refresh just failed.
    await leave({ retry: false }).catch(() => {});
    unselect();
    if (session.user) {
      // End the user's session on the server too: its refresh token stops working.
      await postJson('/api/v1/auth/logout', { refreshToken: session.refreshToken }).catch(() => {});
    }
    session = null;
    for (const id of [...blobUrls.keys()]) setBlob(id, null);
    $('devices').replaceChildren();
    $('streams').replaceChildren();
    $('workspace').hidden = true;
    $('session-panel').hidden = true;
    $('sign-in-panel').hidden = false;
    say(message);
  }

  // --- devices and streams ----------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text ?? '';
    if (className) td.className = className;
    return td;
  }

  function button(id, label, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.id = id;
    b.textContent = label;
    b.addEventListener('click', onClick);
    return b;
  }

  async function loadDevices() {
    const devices = await api('/api/v1/devices');
    $('devices').replaceChildren(...devices.map((device) => {
      const row = document.createElement('tr');
      row.dataset.deviceId = device.id;
      const actions = cell('', 'actions');
      // start-stream is idempotent: for a running camera it answers with the same stream.
      actions.append(button(`start-${device.id}`, device.is_active ? 'Watch' : 'Start',
        () => act('start', () => startDevice(device.id))));
      row.append(cell(device.name), cell(device.rtsp_url, 'url'),
        cell(device.is_active ? 'yes' : 'no'), actions);
      return row;
    }));
  }

  async function loadStreams() {
    const { streams } = await api('/v2/streams?limit=20');
    $('streams').replaceChildren(...streams.map((stream) => {
      const row = document.createElement('tr');
      row.dataset.streamId = stream.id;
      const actions = cell('', 'actions');
      if (stream.state === 'LIVE') {
        actions.append(button(`watch-${stream.id}`, 'Watch', () => act('watch', () => watch(stream.id))));
      }
      row.append(cell(stream.name), cell(stream.state, `state-${stream.state}`),
        cell(new Date(stream.created_at).toLocaleString()), actions);
      return row;
    }));
  }

  function reloadLists() {
    return Promise.all([loadDevices(), loadStreams()]);
  }

  async function addDevice() {
    const name = $('device-name').value.trim();
    const device = await api('/api/v1/devices', {
      method: 'POST',
      json: { name, rtsp_url: $('device-url').value.trim() },
    });
    $('add-device-form').reset();
    await loadDevices();
    say(`Added ${device.name}.`);
  }

  async function startDevice(deviceId) {
    say('Starting the stream (the camera is being opened)…');
    const started = await api(`/api/v1/devices/${deviceId}/start-stream`, { method: 'POST' });
    await reloadLists();
    await watch(started.v2_stream_id);
  }

  async function stopStream() {
    const { id, cameraId } = selected;
    await leave();
    say('Stopping the stream…');
    const answer = await api(`/api/v1/devices/${cameraId}/stop-stream`, { method: 'POST' });
    await reloadLists();
    await pollHealth(); // shows the final state at once; polling ends when it is CLOSED
    say(answer.stopped ? `Stream ${id} stopped.` : 'The camera had no active stream.');
  }

  // --- live video over WHEP ---------------------------------------------------------------

  function gatheringComplete(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, GATHERING_LIMIT_MS); // then send what we have
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function newPeerConnection(current) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    // The camera's sound, as Opus, when it has any; played muted until the user unmutes.
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const media = new MediaStream();
    pc.addEventListener('track', (event) => {
      const video = $('video');
      media.addTrack(event.track);
      if (event.track.kind === 'audio') setSound(true, video.muted);
      video.srcObject = media;
      video.play().catch(() => {}); // muted autoplay is allowed; a refusal leaves controls to the user
    });
    pc.addEventListener('connectionstatechange', () => {
      if (whep !== current) return;
      $('watching').textContent = `${current.streamId} · ${pc.connectionState}`;
      if (pc.connectionState === 'failed') showError(new Error('WebRTC connection failed'));
    });
    return pc;
  }

  async function watch(streamId) {
    await leave(); // never leave a consumer dangling when switching (guide §7)
    // Guide §7: check the state before attaching; the answer also names the health endpoint.
    const stream = await api(`/v2/streams/${streamId}`);
    select(stream);
    if (stream.state !== 'LIVE') throw new Error(`Stream ${streamId} is ${stream.state}; start it first`);
    const current = { streamId, pc: null, location: null };
    whep = current;
    current.pc = newPeerConnection(current);
    updateControls();
    say('Connecting the video…');
    let answer;
    try {
      answer = await offer(current);
    } catch (error) {
      abandon(current);
      throw error;
    }
    if (whep !== current) {
      await closeWhep(current); // "Stop viewing" was clicked while the offer was on its way
      return;
    }
    await current.pc.setRemoteDescription({ type: 'answer', sdp: answer });
    updateControls();
    say(`Watching ${stream.name}.`);
  }

  // POST the offer (WHEP): 201 with the SDP answer, and the session's URL in Location.
  async function offer(current) {
    const { pc } = current;
    await pc.setLocalDescription(await pc.createOffer());
    // Without trickle the offer must carry every candidate: wait for gathering to finish.
    await gatheringComplete(pc);
    const response = await request(`/v2/streams/${current.streamId}/whep`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) throw await errorOf(response);
    const location = response.headers.get('Location');
    if (!location) throw new Error('WHEP answer without a Location header');
    current.location = new URL(location, response.url).href;
    return response.text();
  }

  // A negotiation that failed half-way: close what exists (the error is shown by the caller).
  function abandon(current) {
    if (whep === current) whep = null;
    updateControls();
    closeWhep(current).catch(() => {});
  }

  async function closeWhep(current, retry = true) {
    current.pc.close();
    if (!current.location) return;
    const response = await request(current.location, { method: 'DELETE', retry });
    // 404: the server closed it already (the stream stopped); nothing is left to clean up.
    if (!response.ok && response.status !== 404) throw await errorOf(response);
  }

  // The sound button: enabled while the live stream has audio; the video starts muted.
  function setSound(available, muted) {
    const button = $('sound');
    $('video').muted = muted;
    button.disabled = !available;
    button.textContent = muted ? 'Unmute' : 'Mute';
    button.setAttribute('aria-pressed', String(!muted));
  }

  async function leave({ retry = true } = {}) {
    const current = whep;
    if (!current) return;
    whep = null;
    $('video').srcObject = null;
    setSound(false, true);
    $('watching').textContent = '';
    updateControls();
    await closeWhep(current, retry);
    say('Stopped viewing.');
  }

  // Closing the tab: ask the server to drop the session; keepalive lets the request outlive
  // the page.
  function leaveOnUnload() {
    if (!whep?.location || !session) return;
    fetch(whep.location, {
      method: 'DELETE',
      keepalive: true,
      headers: { Authorization: `Bearer ${session.accessToken}` },
    }).catch(() => {});
  }

  // --- snapshots and bookmarks ------------------------------------------------------------

  function setBlob(elementId, blob) {
    const old = blobUrls.get(elementId);
    if (old) URL.revokeObjectURL(old);
    blobUrls.delete(elementId);
    const element = $(elementId);
    if (!blob) {
      element.removeAttribute(element.tagName === 'A' ? 'href' : 'src');
      element.hidden = true;
      return null;
    }
    const url = URL.createObjectURL(blob);
    blobUrls.set(elementId, url);
    element[element.tagName === 'A' ? 'href' : 'src'] = url;
    element.hidden = false;
    return url;
  }

  async function takeSnapshot() {
    say('Taking a snapshot…');
    const created = await api(`/v2/streams/${selected.id}/snapshots`, {
      method: 'POST',
      json: { source: 'live', created_by: 'viewer' },
    });
    const ready = await untilReady(`/v2/snapshots/${created.id}`, Date.now() + SNAPSHOT_LIMIT_MS, 500);
    setBlob('snapshot-image', await apiBlob(ready.image_url));
    $('snapshot-caption').textContent =
      `Snapshot ${ready.width}×${ready.height}, ${new Date(ready.timestamp).toLocaleTimeString()}`;
    say('Snapshot ready.');
  }

  async function takeBookmark() {
    say('Bookmarking: the clip is cut once the next 5 s are recorded…');
    const created = await api(`/v2/streams/${selected.id}/bookmarks`, {
      method: 'POST',
      json: { source: 'live', before_seconds: 5, after_seconds: 5, label: 'from viewer' },
    });
    const deadline = Date.parse(created.end_time) + BOOKMARK_GRACE_MS;
    const ready = await untilReady(`/v2/bookmarks/${created.id}`, deadline, 1000);
    const blob = await apiBlob(ready.video_url);
    setBlob('bookmark-video', blob);
    setBlob('bookmark-link', blob);
    const link = $('bookmark-link');
    link.download = `bookmark-${ready.id}.mp4`;
    link.textContent = `Download bookmark clip (${ready.duration_seconds} s, ${Math.round(blob.size / 1024)} KiB)`;
    say('Bookmark ready.');
  }

  // --- stream health ----------------------------------------------------------------------

  function select(stream) {
    unselect();
    selected = {
      id: stream.id,
      cameraId: stream.camera_id,
      healthUrl: stream.endpoints?.health ?? `/v2/streams/${stream.id}/health`,
      state: stream.state,
      timer: setInterval(() => pollHealth().catch(showError), HEALTH_EVERY_MS),
      polling: false,
    };
    pollHealth().catch(showError);
    recordings?.show(stream.camera_id).catch(showError);
  }

  function unselect() {
    recordings?.hide();
    if (selected) clearInterval(selected.timer);
    selected = null;
    updateControls();
  }

  async function pollHealth() {
    const current = selected;
    if (!current || current.polling) return; // a slow answer: skip a tick, don't pile up
    current.polling = true;
    try {
      const health = await api(current.healthUrl);
      if (selected !== current) return;
      const changed = health.state !== current.state;
      current.state = health.state;
      showHealth(health);
      // CLOSED is final: nothing more to watch for.
      if (health.state === 'CLOSED') clearInterval(current.timer);
      updateControls();
      if (changed) await loadStreams();
    } finally {
      current.polling = false;
    }
  }

  function formatUptime(seconds) {
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
  }

  function showValue(id, value, text) {
    $(id).textContent = text;
    $(id).dataset.value = value;
  }

  function showHealth(health) {
    const m = health.metrics;
    $('health').dataset.state = health.state;
    showValue('health-state', health.state, health.state + (health.last_error ? ` (${health.last_error})` : ''));
    $('health-state').className = `state-${health.state}`;
    showValue('health-bitrate', m.bitrate_kbps, `${m.bitrate_kbps.toFixed(0)} kbit/s`);
    showValue('health-fps', m.fps, m.fps.toFixed(1));
    showValue('health-loss', m.packet_loss, `${(m.packet_loss * 100).toFixed(2)} %`);
    showValue('health-jitter', m.jitter_ms, `${m.jitter_ms.toFixed(1)} ms`);
    showValue('health-uptime', health.uptime_seconds, formatUptime(health.uptime_seconds));
  }

  // --- wiring -----------------------------------------------------------------------------

  // Run one action at a time per name, show its error, and keep the buttons in step.
  async function act(name, work) {
    if (busy.has(name)) return;
    busy.add(name);
    clearError();
    updateControls();
    try {
      await work();
    } catch (error) {
      showError(error);
    } finally {
      busy.delete(name);
      updateControls();
    }
  }

  function updateControls() {
    const live = selected?.state === 'LIVE';
    $('snapshot').disabled = !live || busy.has('snapshot');
    $('bookmark').disabled = !live || busy.has('bookmark');
    $('leave').disabled = !whep;
    $('stop').disabled = !selected || selected.state === 'CLOSED' || busy.has('stop');
    $('sign-in').disabled = busy.has('sign-in');
    $('user-sign-in').disabled = busy.has('user-sign-in');
    $('add-device').disabled = busy.has('add-device');
    for (const b of document.querySelectorAll('[id^="start-"], [id^="watch-"]')) {
      b.disabled = busy.has('start') || busy.has('watch') || busy.has('stop');
    }
  }

  async function onSignIn() {
    const clientId = $('client-id').value.trim();
    const secret = $('client-secret');
    say('Signing in…');
    try {
      await signIn(clientId, secret.value);
    } finally {
      secret.value = ''; // the secret is not kept anywhere, not even in the form
    }
    await enterWorkspace();
  }

  async function onUserSignIn() {
    const email = $('user-email').value.trim();
    const password = $('user-password');
    say('Signing in…');
    try {
      await signInUser(email, password.value);
    } finally {
      password.value = ''; // the password is not kept anywhere, not even in the form
    }
    await enterWorkspace();
  }

  async function enterWorkspace() {
    recordings = makeRecordings({ api, apiBlob, act, say, scopes: session.scopes });
    $('signed-in-as').textContent = session.clientId;
    $('scopes').textContent = `(${session.scopes.join(', ')})`;
    $('sign-in-panel').hidden = true;
    $('session-panel').hidden = false;
    $('workspace').hidden = false;
    await reloadLists();
    say('Signed in. Start a device or watch a live stream.');
  }

  function submit(formId, name, work) {
    $(formId).addEventListener('submit', (event) => {
      event.preventDefault();
      act(name, work);
    });
  }

  submit('sign-in-form', 'sign-in', onSignIn);
  submit('user-sign-in-form', 'user-sign-in', onUserSignIn);
  submit('add-device-form', 'add-device', addDevice);
  $('sign-out').addEventListener('click', () => act('sign-out', () => endSession('Signed out.')));
  $('reload').addEventListener('click', () => act('reload', reloadLists));
  $('snapshot').addEventListener('click', () => act('snapshot', takeSnapshot));
  $('bookmark').addEventListener('click', () => act('bookmark', takeBookmark));
  $('leave').addEventListener('click', () => act('leave', () => leave()));
  $('stop').addEventListener('click', () => act('stop', stopStream));
  $('sound').addEventListener('click', () => setSound(true, !$('video').muted));
  $('video').addEventListener('resize', () => {
    const video = $('video');
    $('video').title = `${video.videoWidth}×${video.videoHeight}`;
  });
  window.addEventListener('pagehide', leaveOnUnload);
})();
