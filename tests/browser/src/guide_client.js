// The integration guide's WebRTC client (section 4.2, steps 1-8), written as the guide
// writes it, with stock mediasoup-client. Only two things differ from the guide's text:
// every request carries the Authorization header, and the pieces are kept per viewer so
// that one page can hold several viewers and the test can read their progress.
//
// Bundled by esbuild into dist/guide_client.js (IIFE); the test calls window.vasGuide.*
// with page.evaluate.

import { Device, version as mediasoupClientVersion } from 'mediasoup-client';

import { newVideoElement, snapshot, waitForFrames, watchVideo } from './frame_progress.js';

const viewers = new Map();
let nextHandle = 1;

async function checked(response, what) {
  if (!response.ok) {
    const body = await response.text().catch(() => '');
    throw new Error(`${what}: HTTP ${response.status} ${body}`);
  }
  return response;
}

// Steps 1-7 for one viewer. Returns ids the test can check against the server. With
// `audio: true` (VAS: a camera with sound), steps 4-6 run again for the audio producer.
async function run({
  baseUrl = '',
  token,
  deviceId,
  deviceName,
  clientId = 'ruth-ai-instance-1',
  audio = false,
}) {
  const accessToken = token;
  const auth = { Authorization: `Bearer ${accessToken}` };
  const viewer = { handle: nextHandle++, events: [] };
  viewers.set(viewer.handle, viewer);

  // Step 1: Discover Device
  const response = await checked(
    await fetch(`${baseUrl}/api/v1/devices`, { headers: auth }),
    'GET /api/v1/devices',
  );
  const devices = await response.json();
  const device = devices.find((d) => (deviceId ? d.id === deviceId : d.name === deviceName));
  if (!device) throw new Error(`device ${deviceId ?? deviceName} not listed`);

  // Step 2: Start Stream
  const startResponse = await checked(
    await fetch(`${baseUrl}/api/v1/devices/${device.id}/start-stream`, {
      method: 'POST',
      headers: auth,
    }),
    'POST start-stream',
  );
  const streamInfo = await startResponse.json();
  if (streamInfo.reconnect) {
    console.log('Reconnecting to existing stream');
  }
  const streamId = streamInfo.v2_stream_id;
  viewer.streamId = streamId;

  // Step 3: Get Router Capabilities
  const capResponse = await checked(
    await fetch(`${baseUrl}/v2/streams/${streamId}/router-capabilities`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    }),
    'GET router-capabilities',
  );
  const { rtp_capabilities } = await capResponse.json();
  const msDevice = new Device();
  await msDevice.load({ routerRtpCapabilities: rtp_capabilities });
  viewer.device = msDevice;

  // Step 4: Attach Consumer
  const consumeResponse = await checked(
    await fetch(`${baseUrl}/v2/streams/${streamId}/consume`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${accessToken}`,
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({
        client_id: clientId,
        rtp_capabilities: msDevice.rtpCapabilities,
      }),
    }),
    'POST consume',
  );
  const consumerData = await consumeResponse.json();
  viewer.consumerId = consumerData.consumer_id;

  // Step 5: Create Transport and Connect
  const transport = msDevice.createRecvTransport({
    id: consumerData.transport.id,
    iceParameters: consumerData.transport.ice_parameters,
    iceCandidates: consumerData.transport.ice_candidates,
    dtlsParameters: consumerData.transport.dtls_parameters,
  });
  viewer.transport = transport;
  transport.on('connectionstatechange', (state) => {
    viewer.events.push({ t: performance.now(), connectionState: state });
  });

  transport.on('connect', async ({ dtlsParameters }, callback, errback) => {
    try {
      await checked(
        await fetch(`${baseUrl}/v2/streams/${streamId}/consumers/${consumerData.consumer_id}/connect`, {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${accessToken}`,
            'Content-Type': 'application/json',
          },
          body: JSON.stringify({ dtls_parameters: dtlsParameters }),
        }),
        'POST connect',
      );
      viewer.events.push({ t: performance.now(), connectPosted: true });
      callback();
    } catch (error) {
      viewer.events.push({ t: performance.now(), connectError: String(error) });
      errback(error);
    }
  });

  // Step 6: Consume Media
  const consumer = await transport.consume({
    id: consumerData.consumer_id,
    producerId: streamInfo.producers.video,
    kind: 'video',
    rtpParameters: consumerData.rtp_parameters,
  });
  viewer.consumer = consumer;
  await consumer.resume();

  const videoElement = newVideoElement(`guide-${viewer.handle}`);
  viewer.video = videoElement;
  viewer.watcher = watchVideo(videoElement);
  const mediaStream = new MediaStream([consumer.track]);
  videoElement.srcObject = mediaStream;
  // play() resolves only once media flows; do not hold the test's evaluate on it.
  viewer.playing = videoElement.play().then(
    () => viewer.events.push({ t: performance.now(), playing: true }),
    (error) => viewer.events.push({ t: performance.now(), playError: String(error) }),
  );

  if (audio) {
    viewer.audio = await consumeAudio({ baseUrl, accessToken, streamId, streamInfo, msDevice, clientId });
    // Played by an <audio> element of its own (Chromium feeds WebAudio from a remote
    // track only while an element plays it), and heard by an analyser.
    const audioStream = new MediaStream([viewer.audio.consumer.track]);
    viewer.audioElement = new Audio();
    viewer.audioElement.srcObject = audioStream;
    viewer.audioElement.play().catch((error) => viewer.events.push({ audioPlayError: String(error) }));
    viewer.analyser = listen(audioStream);
  }

  // Step 7: Monitor Stream Health (one check here; health() repeats it on demand)
  viewer.health = await health(viewer.handle, { baseUrl, token });

  return {
    handle: viewer.handle,
    deviceId: device.id,
    streamId,
    reconnect: Boolean(streamInfo.reconnect),
    producerId: streamInfo.producers.video,
    consumerId: consumerData.consumer_id,
    transportId: consumerData.transport.id,
    handlerName: msDevice.handlerName,
    health: viewer.health,
    audio: viewer.audio
      ? {
        producerId: streamInfo.producers.audio,
        consumerId: viewer.audio.consumerId,
        transportId: viewer.audio.transport.id,
        rtpParameters: viewer.audio.rtpParameters,
      }
      : null,
    routerCodecs: rtp_capabilities.codecs.map((c) => c.mimeType),
  };
}

// Steps 4-6 for the stream's audio, the mediasoup way: the same Device, a consume with
// `kind: 'audio'`, its own recv transport, and `transport.consume` of `producers.audio`.
async function consumeAudio({ baseUrl, accessToken, streamId, streamInfo, msDevice, clientId }) {
  const consumeResponse = await checked(
    await fetch(`${baseUrl}/v2/streams/${streamId}/consume`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${accessToken}`,
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({
        client_id: clientId,
        rtp_capabilities: msDevice.rtpCapabilities,
        kind: 'audio',
      }),
    }),
    'POST consume (audio)',
  );
  const consumerData = await consumeResponse.json();
  const transport = msDevice.createRecvTransport({
    id: consumerData.transport.id,
    iceParameters: consumerData.transport.ice_parameters,
    iceCandidates: consumerData.transport.ice_candidates,
    dtlsParameters: consumerData.transport.dtls_parameters,
  });
  transport.on('connect', async ({ dtlsParameters }, callback, errback) => {
    try {
      await checked(
        await fetch(`${baseUrl}/v2/streams/${streamId}/consumers/${consumerData.consumer_id}/connect`, {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${accessToken}`,
            'Content-Type': 'application/json',
          },
          body: JSON.stringify({ dtls_parameters: dtlsParameters }),
        }),
        'POST connect (audio)',
      );
      callback();
    } catch (error) {
      errback(error);
    }
  });
  const consumer = await transport.consume({
    id: consumerData.consumer_id,
    producerId: streamInfo.producers.audio,
    kind: 'audio',
    rtpParameters: consumerData.rtp_parameters,
  });
  await consumer.resume();
  return {
    consumerId: consumerData.consumer_id,
    rtpParameters: consumerData.rtp_parameters,
    transport,
    consumer,
  };
}

// A WebAudio analyser on the played stream's audio: the strongest frequency and its level.
function listen(mediaStream) {
  const context = new AudioContext();
  const source = context.createMediaStreamSource(mediaStream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  source.connect(analyser);
  return { context, analyser };
}

function peak({ context, analyser }) {
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  let best = 1;
  for (let i = 2; i < bins.length; i += 1) if (bins[i] > bins[best]) best = i;
  return { hz: (best * context.sampleRate) / analyser.fftSize, db: bins[best], state: context.state };
}

// The audio consumer's received RTP (Chromium's inbound-rtp) and what WebAudio hears.
async function audioProgress(handle) {
  const viewer = viewerOf(handle);
  if (!viewer.audio) throw new Error(`viewer ${handle} has no audio`);
  const report = await viewer.audio.consumer.getStats();
  let inbound;
  let mime = null;
  report.forEach((stat) => {
    if (stat.type === 'inbound-rtp' && stat.kind === 'audio') inbound = stat;
  });
  if (inbound) report.forEach((stat) => { if (stat.id === inbound.codecId) mime = stat.mimeType; });
  return {
    connectionState: viewer.audio.transport.connectionState,
    packets: inbound?.packetsReceived ?? 0,
    level: inbound?.audioLevel ?? 0,
    energy: inbound?.totalAudioEnergy ?? 0,
    mime,
    peak: peak(viewer.analyser),
  };
}

async function health(handle, { baseUrl = '', token }) {
  const viewer = viewerOf(handle);
  const healthResponse = await fetch(`${baseUrl}/v2/streams/${viewer.streamId}/health`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  return { status: healthResponse.status, body: await healthResponse.json().catch(() => null) };
}

// Step 8: Graceful Disconnect. Returns the DELETE's status.
async function stop(handle, { baseUrl = '', token }) {
  const viewer = viewerOf(handle);
  const accessToken = token;
  const response = await fetch(`${baseUrl}/v2/streams/${viewer.streamId}/consumers/${viewer.consumerId}`, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${accessToken}` },
  });
  let status = response.status;
  if (viewer.audio) {
    const audioResponse = await fetch(`${baseUrl}/v2/streams/${viewer.streamId}/consumers/${viewer.audio.consumerId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    if (status === 204) status = audioResponse.status;
    viewer.audio.consumer.close();
    viewer.audio.transport.close();
    viewer.audioElement?.pause();
    viewer.analyser?.context.close();
  }
  viewer.consumer?.close();
  viewer.transport?.close();
  viewer.watcher?.stop();
  viewer.video?.remove();
  viewers.delete(handle);
  return status;
}

function viewerOf(handle) {
  const viewer = viewers.get(handle);
  if (!viewer) throw new Error(`no viewer ${handle}`);
  return viewer;
}

async function progress(handle) {
  const viewer = viewerOf(handle);
  const result = await snapshot(viewer.video, viewer.watcher, () => viewer.consumer.getStats());
  result.connectionState = viewer.transport.connectionState;
  result.events = viewer.events;
  return result;
}

function frames(handle, options) {
  return waitForFrames(() => progress(handle), options);
}

// For harness tests: load a Device with given router capabilities, no server needed.
async function loadDevice(routerRtpCapabilities) {
  const msDevice = new Device();
  await msDevice.load({ routerRtpCapabilities });
  return {
    handlerName: msDevice.handlerName,
    loaded: msDevice.loaded,
    rtpCapabilities: msDevice.rtpCapabilities,
  };
}

window.vasGuide = {
  mediasoupClientVersion,
  run,
  health,
  stop,
  progress,
  audioProgress,
  waitForFrames: frames,
  loadDevice,
  handles: () => [...viewers.keys()],
};
