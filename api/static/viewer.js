// The VAS viewer, served at `/`: sign in, devices and streams, live video over WHEP,
// snapshots, bookmarks and stream health; the recordings, events and detection panels come
// from recordings.js, events.js and detection.js. Plain JS on the browser's own APIs; no
// libraries.
//
// The tokens live only inside api.js's closure (see there); this file gets its helpers.
// Everything the API returns is put on the page with textContent, never as HTML, so that a
// device name cannot run script next to the token.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  // The recordings panel's factory (recordings.js): taken off `window`, given our helpers.
  const makeApi = window.vasApi;
  const makeCaptures = window.vasCaptures;
  const showHealth = window.vasShowHealth;
  const makeRecordings = window.vasRecordingsPanel;
  const makeEvents = window.vasEventsPanel;
  const makeDetection = window.vasDetectionEditor;
  delete window.vasApi;
  delete window.vasCaptures;
  delete window.vasShowHealth;
  delete window.vasRecordingsPanel;
  delete window.vasEventsPanel;
  delete window.vasDetectionEditor;

  const HEALTH_EVERY_MS = 2000;
  // Bounds our own waits, so that a lost answer cannot leave a button disabled forever.
  const GATHERING_LIMIT_MS = 5000;

  let selected = null; // the stream shown: {id, cameraId, healthUrl, state, timer, polling}
  let whep = null; // the live WHEP session: {streamId, pc, location}
  const busy = new Set(); // actions in flight: a second click is ignored until done (guide §7)
  let recordings = null; // the recordings panel (recordings.js), made at sign-in
  let events = null; // the events panel (events.js), made at sign-in
  let detection = null; // the detection settings editor (detection.js), made at sign-in
  const {
    say, showError, clearError, errorOf, request, api, apiBlob, untilReady, signIn, signInUser,
    signOut, signedIn, who, accessToken,
  } = makeApi({
    onSessionLost: async (error) => {
      await endSession('Session ended: sign in again.');
      showError(error);
    },
  });
  const captures = makeCaptures({ api, apiBlob, untilReady, say });

  async function endSession(message) {
    if (!signedIn()) return;
    // Close the WHEP session while we still hold a token; no refresh on a 401 here, as this
    // may run because a refresh just failed.
    await leave({ retry: false }).catch(() => {});
    unselect();
    events?.stop();
    detection?.stop();
    events = null;
    detection = null;
    await signOut();
    captures.clear();
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
    if (!whep?.location || !signedIn()) return;
    fetch(whep.location, {
      method: 'DELETE',
      keepalive: true,
      headers: { Authorization: `Bearer ${accessToken()}` },
    }).catch(() => {});
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
    const { name, scopes } = who();
    recordings = makeRecordings({ api, apiBlob, act, say, scopes });
    events = makeEvents({ api, apiBlob, act, say, scopes, accessToken, recordings });
    detection = makeDetection({ api, apiBlob, act, say, scopes });
    $('signed-in-as').textContent = name;
    $('scopes').textContent = `(${scopes.join(', ')})`;
    $('sign-in-panel').hidden = true;
    $('session-panel').hidden = false;
    $('workspace').hidden = false;
    await reloadLists();
    await Promise.all([events.start(), detection.start()]);
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
  $('snapshot').addEventListener('click', () => act('snapshot', () => captures.snapshot(selected.id)));
  $('bookmark').addEventListener('click', () => act('bookmark', () => captures.bookmark(selected.id)));
  $('leave').addEventListener('click', () => act('leave', () => leave()));
  $('stop').addEventListener('click', () => act('stop', stopStream));
  $('sound').addEventListener('click', () => setSound(true, !$('video').muted));
  $('video').addEventListener('resize', () => {
    const video = $('video');
    $('video').title = `${video.videoWidth}×${video.videoHeight}`;
  });
  window.addEventListener('pagehide', leaveOnUnload);
})();
