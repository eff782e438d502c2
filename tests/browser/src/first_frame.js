// Time-stamped joins for benchmarks/browser_first_frame.py: the guide's mediasoup-client
// flow (section 4.2, steps 3-8, as guide_client.js writes it) and a WHEP join, each marking
// every step with performance.now() until the first frame is shown.
//
// Marks (ms on the page's clock; `performance.timeOrigin` is returned to map them to the
// wall clock):
// - signalling: request sent / answered, Device.load, transport.consume, resume, play();
// - ice_connected: the peer connection's iceConnectionState reaches "connected";
// - dtls_connected: its connectionState reaches "connected" (ICE and DTLS up; the guide's
//   transport "connectionstatechange" says the same, marked as transport_connected);
// - track_unmuted: the receiver's track unmutes (Chromium: the first RTP packet);
// - frame_received: the first shown frame's last packet arrived (rVFC metadata.receiveTime);
// - first_decoded: the player got its first decoded frame ("loadeddata");
// - first_rendered: the first requestVideoFrameCallback (the frame was composited);
// - stats_*: getStats() polled every few ms (Chromium caches a report for up to 50 ms, so
//   these are late by up to that much): first packet, first decoded frame.
// After the first frame, the page watches `settleMs` more and reports what the receiver did
// with the rest of the GOP-cache burst (frames decoded and dropped, NACKs, PLIs, jitter
// buffer delay).

import { Device } from 'mediasoup-client';

const joins = new Map();
let nextHandle = 1;
const now = () => performance.now();

async function checked(response, what) {
  if (!response.ok) {
    const body = await response.text().catch(() => '');
    throw new Error(`${what}: HTTP ${response.status} ${body}`);
  }
  return response;
}

function newJoin(kind) {
  const join = { handle: nextHandle++, kind, marks: {}, info: {} };
  join.mark = (name) => {
    if (join.marks[name] === undefined) join.marks[name] = now();
  };
  joins.set(join.handle, join);
  return join;
}

function videoElement(label) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.width = 320;
  video.height = 180;
  video.dataset.label = label;
  document.body.appendChild(video);
  return video;
}

function inboundVideo(report) {
  let found;
  report.forEach((stat) => {
    if (stat.type === 'inbound-rtp' && (stat.kind ?? stat.mediaType) === 'video') found = stat;
  });
  return found;
}

function watchPeerConnection(join, pc) {
  const ice = () => {
    if (['connected', 'completed'].includes(pc.iceConnectionState)) join.mark('ice_connected');
  };
  const connection = () => {
    if (pc.connectionState === 'connected') join.mark('dtls_connected');
    if (pc.connectionState === 'failed') join.failed = `peer connection ${pc.connectionState}`;
  };
  pc.addEventListener('iceconnectionstatechange', ice);
  pc.addEventListener('connectionstatechange', connection);
  ice();
  connection();
}

// Resolves once the first frame was composited (or rejects after timeoutMs), then keeps
// counting for settleMs and adds the receiver's stats.
function watchFirstFrame(join, video, track, getStats, { timeoutMs, settleMs, pollMs }) {
  track.addEventListener('unmute', () => join.mark('track_unmuted'), { once: true });
  if (!track.muted) join.mark('track_unmuted_at_start');
  video.addEventListener('loadeddata', () => join.mark('first_decoded'), { once: true });
  join.frames = 0;
  const onFrame = (callbackNow, metadata) => {
    join.frames += 1;
    if (join.frames === 1) {
      join.mark('first_rendered');
      join.info.rendered_callback = callbackNow;
      if (metadata.receiveTime !== undefined) join.marks.frame_received = metadata.receiveTime;
      if (metadata.presentationTime !== undefined) join.marks.first_presented = metadata.presentationTime;
      join.info.first_rtp_timestamp = metadata.rtpTimestamp ?? null;
      join.info.first_processing_ms = metadata.processingDuration !== undefined
        ? metadata.processingDuration * 1000 : null;
      join.info.first_width = metadata.width;
    }
    if (!join.stopped) video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);

  let polling = true;
  const poll = async () => {
    while (polling && !join.stopped) {
      const inbound = inboundVideo(await getStats());
      if (inbound) {
        if (inbound.packetsReceived > 0) join.mark('stats_first_rtp');
        if (inbound.framesDecoded > 0) join.mark('stats_first_decoded');
      }
      if (join.marks.stats_first_decoded !== undefined && join.marks.first_rendered !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  };
  const polled = poll();

  return new Promise((resolve, reject) => {
    const deadline = now() + timeoutMs;
    const check = async () => {
      if (join.failed) {
        polling = false;
        reject(new Error(join.failed));
        return;
      }
      if (join.marks.first_rendered === undefined) {
        if (now() > deadline) {
          polling = false;
          const inbound = inboundVideo(await getStats());
          reject(new Error(`no frame in ${timeoutMs} ms: ${JSON.stringify({ marks: join.marks, inbound })}`));
          return;
        }
        setTimeout(check, 5);
        return;
      }
      await polled;
      const framesAtFirst = join.frames;
      await new Promise((r) => setTimeout(r, settleMs));
      const inbound = inboundVideo(await getStats()) ?? {};
      join.info.settle = {
        ms: settleMs,
        rendered: join.frames - framesAtFirst,
        framesReceived: inbound.framesReceived ?? 0,
        framesDecoded: inbound.framesDecoded ?? 0,
        framesDropped: inbound.framesDropped ?? 0,
        keyFramesDecoded: inbound.keyFramesDecoded ?? 0,
        packetsReceived: inbound.packetsReceived ?? 0,
        packetsLost: inbound.packetsLost ?? 0,
        nackCount: inbound.nackCount ?? 0,
        pliCount: inbound.pliCount ?? 0,
        freezeCount: inbound.freezeCount ?? 0,
        jitterBufferDelayMs: inbound.jitterBufferEmittedCount
          ? (1000 * inbound.jitterBufferDelay) / inbound.jitterBufferEmittedCount : null,
        jitterBufferTargetDelayMs: inbound.jitterBufferEmittedCount && inbound.jitterBufferTargetDelay
          ? (1000 * inbound.jitterBufferTargetDelay) / inbound.jitterBufferEmittedCount : null,
        totalDecodeTimeMs: (inbound.totalDecodeTime ?? 0) * 1000,
        decoderImplementation: inbound.decoderImplementation ?? null,
      };
      resolve();
    };
    check();
  });
}

function result(join) {
  return {
    handle: join.handle,
    kind: join.kind,
    timeOrigin: performance.timeOrigin,
    marks: join.marks,
    info: join.info,
  };
}

// The guide's steps 3-8 for a stream already started (step 2 gave streamId and producerId).
async function guide({
  token, streamId, producerId, clientId = 'first-frame',
  timeoutMs = 10000, settleMs = 1000, pollMs = 4,
}) {
  const join = newJoin('guide');
  const accessToken = token;
  join.streamId = streamId;

  // Step 3: Get Router Capabilities
  join.mark('caps_sent');
  const capResponse = await checked(
    await fetch(`/v2/streams/${streamId}/router-capabilities`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    }),
    'GET router-capabilities',
  );
  const { rtp_capabilities } = await capResponse.json();
  join.mark('caps_answered');
  const msDevice = new Device();
  await msDevice.load({ routerRtpCapabilities: rtp_capabilities });
  join.mark('device_loaded');

  // Step 4: Attach Consumer
  join.mark('consume_sent');
  const consumeResponse = await checked(
    await fetch(`/v2/streams/${streamId}/consume`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, rtp_capabilities: msDevice.rtpCapabilities }),
    }),
    'POST consume',
  );
  const consumerData = await consumeResponse.json();
  join.mark('consume_answered');
  join.consumerId = consumerData.consumer_id;
  join.info.consumerId = consumerData.consumer_id;
  join.info.headerExtensions = consumerData.rtp_parameters.headerExtensions.map((e) => e.uri);

  // Step 5: Create Transport and Connect
  const transport = msDevice.createRecvTransport({
    id: consumerData.transport.id,
    iceParameters: consumerData.transport.ice_parameters,
    iceCandidates: consumerData.transport.ice_candidates,
    dtlsParameters: consumerData.transport.dtls_parameters,
  });
  join.transport = transport;
  join.mark('transport_created');
  // Instrumentation only: the handler's RTCPeerConnection, for ICE and DTLS state events.
  watchPeerConnection(join, transport.handler._pc);
  transport.on('connectionstatechange', (state) => {
    if (state === 'connected') join.mark('transport_connected');
    if (state === 'failed') join.failed = 'transport failed';
  });
  transport.on('connect', async ({ dtlsParameters }, callback, errback) => {
    join.mark('connect_sent');
    try {
      await checked(
        await fetch(`/v2/streams/${streamId}/consumers/${consumerData.consumer_id}/connect`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ dtls_parameters: dtlsParameters }),
        }),
        'POST connect',
      );
      join.mark('connect_answered');
      callback();
    } catch (error) {
      errback(error);
    }
  });

  // Step 6: Consume Media
  const consumer = await transport.consume({
    id: consumerData.consumer_id,
    producerId,
    kind: 'video',
    rtpParameters: consumerData.rtp_parameters,
  });
  join.consumer = consumer;
  join.mark('consumed');
  await consumer.resume();
  join.mark('resumed');

  const video = videoElement(`guide-${join.handle}`);
  join.video = video;
  const watching = watchFirstFrame(join, video, consumer.track, () => consumer.getStats(),
    { timeoutMs, settleMs, pollMs });
  video.srcObject = new MediaStream([consumer.track]);
  join.mark('play_called');
  video.play().catch((error) => { join.info.playError = String(error); });
  await watching;
  return result(join);
}

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

// A WHEP join: recvonly offer with its candidates (gathering awaited), POST, answer.
async function whep({ url, token, timeoutMs = 10000, settleMs = 1000, pollMs = 4 }) {
  const join = newJoin('whep');
  join.token = token;
  join.mark('pc_created');
  const pc = new RTCPeerConnection({ iceServers: [] });
  join.pc = pc;
  watchPeerConnection(join, pc);
  const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
  const video = videoElement(`whep-${join.handle}`);
  join.video = video;
  const watching = watchFirstFrame(join, video, transceiver.receiver.track,
    () => transceiver.receiver.getStats(), { timeoutMs, settleMs, pollMs });
  pc.addEventListener('track', (event) => {
    join.mark('ontrack');
    video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    join.mark('play_called');
    video.play().catch((error) => { join.info.playError = String(error); });
  });
  await pc.setLocalDescription(await pc.createOffer());
  join.mark('offer_created');
  join.info.gatheringCompleted = await gatheringComplete(pc, 5000);
  join.mark('gathered');
  join.mark('post_sent');
  const response = await fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  const answer = await response.text();
  if (response.status !== 201) throw new Error(`WHEP POST: HTTP ${response.status} ${answer}`);
  join.mark('post_answered');
  join.location = new URL(response.headers.get('Location'), new URL(url, document.baseURI)).href;
  join.info.headerExtensions = [...answer.matchAll(/^a=extmap:\d+ (\S+)/gm)].map((m) => m[1]);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  join.mark('answer_applied');
  await watching;
  return result(join);
}

// Leave: DELETE the consumer (guide step 8) or the WHEP session, close the browser side.
async function stop(handle, { token }) {
  const join = joins.get(handle);
  if (!join) return null;
  join.stopped = true;
  joins.delete(handle);
  let status = null;
  if (join.kind === 'guide' && join.consumerId) {
    const response = await fetch(`/v2/streams/${join.streamId}/consumers/${join.consumerId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${token}` },
    });
    status = response.status;
    join.consumer?.close();
    join.transport?.close();
  } else if (join.kind === 'whep' && join.location) {
    const response = await fetch(join.location, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${token}` },
    });
    status = response.status;
    join.pc?.close();
  }
  join.video?.remove();
  return status;
}

window.vasFirstFrame = {
  guide,
  whep,
  stop,
  stopAll: async (args) => Promise.all([...joins.keys()].map((h) => stop(h, args))),
};
