// Decoded-frame progress of a <video> element, shared by the guide and WHEP clients.
//
// Two independent witnesses that frames were decoded and shown:
// - `requestVideoFrameCallback` fires once per frame composited for the element;
// - `getStats()` "inbound-rtp" `framesDecoded` counts what the decoder produced.
// `currentTime` advancing shows that playback is not stalled.

export function watchVideo(video) {
  const state = { callbacks: 0, presentedFrames: 0, width: 0, height: 0, stopped: false };
  const onFrame = (_now, metadata) => {
    if (state.stopped) return;
    state.callbacks += 1;
    state.presentedFrames = metadata.presentedFrames;
    state.width = metadata.width;
    state.height = metadata.height;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  return {
    state,
    stop() {
      state.stopped = true;
    },
  };
}

// The inbound video RTP stats from an RTCStatsReport (or undefined).
export function inboundVideo(report) {
  let found;
  report.forEach((stat) => {
    if (stat.type === 'inbound-rtp' && (stat.kind ?? stat.mediaType) === 'video') {
      found = stat;
    }
  });
  return found;
}

// A plain-object snapshot, safe to return from page.evaluate.
export async function snapshot(video, watcher, statsReport) {
  const inbound = statsReport ? inboundVideo(await statsReport()) : undefined;
  return {
    rvfcCallbacks: watcher.state.callbacks,
    presentedFrames: watcher.state.presentedFrames,
    frameWidth: watcher.state.width,
    frameHeight: watcher.state.height,
    currentTime: video.currentTime,
    videoWidth: video.videoWidth,
    videoHeight: video.videoHeight,
    paused: video.paused,
    readyState: video.readyState,
    framesDecoded: inbound?.framesDecoded ?? 0,
    framesReceived: inbound?.framesReceived ?? 0,
    keyFramesDecoded: inbound?.keyFramesDecoded ?? 0,
    packetsReceived: inbound?.packetsReceived ?? 0,
    packetsLost: inbound?.packetsLost ?? 0,
    nackCount: inbound?.nackCount ?? 0,
    pliCount: inbound?.pliCount ?? 0,
    codecId: inbound?.codecId ?? null,
    decoderImplementation: inbound?.decoderImplementation ?? null,
  };
}

// Resolve once `progress()` reports at least `frames` decoded frames and a moving
// currentTime, or reject after `timeoutMs` with the last snapshot in the message.
export async function waitForFrames(progress, { frames = 10, timeoutMs = 15000 } = {}) {
  const deadline = performance.now() + timeoutMs;
  let last;
  while (performance.now() < deadline) {
    last = await progress();
    if (last.framesDecoded >= frames && last.rvfcCallbacks >= frames && last.currentTime > 0) {
      return last;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`fewer than ${frames} frames in ${timeoutMs} ms: ${JSON.stringify(last)}`);
}

export function newVideoElement(label) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.width = 320;
  video.height = 180;
  video.dataset.label = label;
  (document.getElementById('videos') ?? document.body).appendChild(video);
  return video;
}
