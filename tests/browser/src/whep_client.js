// A minimal WHEP client (draft-ietf-wish-whep) on a plain RTCPeerConnection.
//
// start(): a recvonly video transceiver, the offer POSTed as application/sdp, the 201's
// SDP answer applied and its Location kept. Without trickle the offer is sent once ICE
// gathering has completed (all candidates inside); with trickle it is sent at once and the
// candidates follow in PATCH requests (application/trickle-ice-sdpfrag). stop() DELETEs
// the session. Bundled by esbuild into dist/whep_client.js; used as window.vasWhep.*.

import { newVideoElement, snapshot, waitForFrames, watchVideo } from './frame_progress.js';

const sessions = new Map();
let nextHandle = 1;

function gatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve(true);
      }
    });
  });
}

function iceCredentials(sdp) {
  const ufrag = /^a=ice-ufrag:(.*)$/m.exec(sdp)?.[1]?.trim();
  const pwd = /^a=ice-pwd:(.*)$/m.exec(sdp)?.[1]?.trim();
  return { ufrag, pwd };
}

// An RFC 8840 SDP fragment carrying `candidates` (RTCIceCandidate or null for the end).
function sdpFragment(session, candidates) {
  const { ufrag, pwd } = iceCredentials(session.pc.localDescription.sdp);
  const lines = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`];
  const byMid = new Map();
  for (const candidate of candidates) {
    const mid = candidate ? candidate.sdpMid : session.mid;
    if (!byMid.has(mid)) byMid.set(mid, []);
    byMid.get(mid).push(candidate);
  }
  for (const [mid, list] of byMid) {
    lines.push('m=video 9 UDP/TLS/RTP/SAVPF 0', `a=mid:${mid}`);
    for (const candidate of list) {
      lines.push(candidate ? `a=${candidate.candidate}` : 'a=end-of-candidates');
    }
  }
  return lines.join('\r\n') + '\r\n';
}

async function patch(session, candidates) {
  const response = await fetch(session.location, {
    method: 'PATCH',
    headers: {
      Authorization: `Bearer ${session.token}`,
      'Content-Type': 'application/trickle-ice-sdpfrag',
    },
    body: sdpFragment(session, candidates),
  });
  session.patches.push(response.status);
}

async function start({ url, token, trickle = false, gatheringTimeoutMs = 5000 }) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const session = {
    handle: nextHandle++, pc, token, trickle, patches: [], events: [], pending: [],
    location: null, mid: null,
  };
  sessions.set(session.handle, session);

  const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
  const video = newVideoElement(`whep-${session.handle}`);
  session.video = video;
  session.watcher = watchVideo(video);
  pc.addEventListener('track', (event) => {
    video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    video.play().catch((error) => session.events.push({ playError: String(error) }));
  });
  pc.addEventListener('connectionstatechange', () => {
    session.events.push({ t: performance.now(), connectionState: pc.connectionState });
  });
  pc.addEventListener('icecandidate', (event) => {
    if (!session.trickle) return;
    if (session.location) {
      patch(session, [event.candidate]).catch((error) => session.events.push({ patchError: String(error) }));
    } else {
      session.pending.push(event.candidate);
    }
  });

  await pc.setLocalDescription(await pc.createOffer());
  session.mid = transceiver.mid;
  const offered = performance.now();
  if (!trickle) {
    session.gatheringCompleted = await gatheringComplete(pc, gatheringTimeoutMs);
  }
  const gatheringMs = performance.now() - offered;
  const response = await fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  const answer = await response.text();
  if (response.status !== 201) {
    throw new Error(`WHEP POST: HTTP ${response.status} ${answer}`);
  }
  const location = response.headers.get('Location');
  if (!location) throw new Error('WHEP POST: 201 without Location');
  session.location = new URL(location, new URL(url, document.baseURI)).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  if (trickle && session.pending.length) {
    const pending = session.pending.splice(0);
    await patch(session, pending);
  }
  return {
    handle: session.handle,
    location: session.location,
    status: response.status,
    contentType: response.headers.get('Content-Type'),
    gatheringCompleted: session.gatheringCompleted ?? null,
    gatheringMs,
    offer: pc.localDescription.sdp,
    answer,
  };
}

function sessionOf(handle) {
  const session = sessions.get(handle);
  if (!session) throw new Error(`no WHEP session ${handle}`);
  return session;
}

async function stop(handle) {
  const session = sessionOf(handle);
  const response = await fetch(session.location, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${session.token}` },
  });
  session.pc.close();
  session.watcher.stop();
  session.video.remove();
  sessions.delete(handle);
  return response.status;
}

async function progress(handle) {
  const session = sessionOf(handle);
  const result = await snapshot(session.video, session.watcher, () => session.pc.getStats());
  result.connectionState = session.pc.connectionState;
  result.iceConnectionState = session.pc.iceConnectionState;
  result.patches = session.patches;
  result.events = session.events;
  return result;
}

function frames(handle, options) {
  return waitForFrames(() => progress(handle), options);
}

window.vasWhep = { start, stop, progress, waitForFrames: frames, handles: () => [...sessions.keys()] };
