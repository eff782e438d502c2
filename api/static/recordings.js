// Recordings on the viewer page: the selected camera's recording sessions on a timeline,
// a recording's segments as a thumbnail strip and a time bar; a click plays a segment (MP4
// plays natively in <video>; a time plays from that moment). Start/stop a recording.
//
// `seek(camera, recording, moment)` (used by events.js) opens a recording and plays it from a
// moment: at once when its segment is written, else when a refresh finds it.
//
// Loaded before viewer.js, which calls `vasRecordingsPanel({api, apiBlob, act, say})` once
// with its own HTTP helpers (the token stays in viewer.js's closure) and removes the
// factory from `window`. Everything from the API goes on the page as text, never as HTML.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const LIST_LIMIT = 50;
  const SEGMENT_LIMIT = 100;
  const POLL_MS = 3000;

  window.vasRecordingsPanel = ({ api, apiBlob, act, say, scopes }) => {
    let cameraId = null;
    let current = null; // the recording shown: {recording, segments}
    let timer = null;
    let pending = null; // a moment to play once its segment is listed: {id, moment}
    const urls = new Set(); // object URLs of thumbnails and the playing segment
    const readable = scopes.includes('admin') || scopes.includes('recordings:read');

    function forgetUrls() {
      for (const url of urls) URL.revokeObjectURL(url);
      urls.clear();
    }

    function blobUrl(blob) {
      const url = URL.createObjectURL(blob);
      urls.add(url);
      return url;
    }

    const ms = (iso) => (iso ? Date.parse(iso) : Date.now());

    async function show(id) {
      if (!readable) return;
      cameraId = id;
      $('recordings-panel').hidden = false;
      clearInterval(timer);
      timer = setInterval(() => refresh().catch(() => {}), POLL_MS);
      await refresh();
    }

    function hide() {
      clearInterval(timer);
      timer = null;
      cameraId = null;
      current = null;
      pending = null;
      forgetUrls();
      $('recordings-panel').hidden = true;
      $('recording-detail').hidden = true;
      $('timeline').replaceChildren();
    }

    // Every session of the camera as a block on one time axis (oldest start .. now).
    async function refresh() {
      if (!cameraId) return;
      const page = await api(`/api/v1/recordings?cameraId=${encodeURIComponent(cameraId)}&limit=${LIST_LIMIT}`);
      const items = page.recordings;
      const from = Math.min(...items.map((r) => ms(r.startTime)), Date.now() - 60000);
      const to = Math.max(...items.map((r) => ms(r.endTime)), Date.now());
      const span = Math.max(1, to - from);
      const blocks = items.map((r) => {
        const block = document.createElement('button');
        block.type = 'button';
        block.id = `recording-${r.id}`;
        block.className = `session ${r.type} ${r.status}`;
        block.dataset.recordingId = r.id;
        block.title = `${r.type} ${r.status}: ${new Date(ms(r.startTime)).toLocaleTimeString()}`
          + ` – ${r.endTime ? new Date(ms(r.endTime)).toLocaleTimeString() : 'now'}`
          + `, ${r.segmentCount} segments`;
        block.textContent = `${r.type === 'manual' ? 'Recording' : 'Continuous'} (${r.status})`;
        block.style.left = `${(100 * (ms(r.startTime) - from)) / span}%`;
        block.style.width = `${Math.max(1, (100 * (ms(r.endTime) - ms(r.startTime))) / span)}%`;
        block.addEventListener('click', () => act('recording', () => open(r.id)));
        return block;
      });
      $('timeline').replaceChildren(...blocks);
      $('timeline-range').textContent = items.length
        ? `${items.length} recordings, ${new Date(from).toLocaleTimeString()} – ${new Date(to).toLocaleTimeString()}`
        : 'No recordings of this camera yet.';
      if (current && !current.recording.segmentsComplete) await open(current.recording.id, false);
      await playPending();
    }

    // A recording's segments: thumbnails (click: play it) and a time bar (click: play there).
    async function open(id, announce = true) {
      const recording = await api(`/api/v1/recordings/${id}`);
      const listed = await api(`/api/v1/recordings/${id}/segments?limit=${SEGMENT_LIMIT}`);
      const changed = !current || current.recording.id !== id
        || current.segments.length !== listed.segments.length;
      current = { recording, segments: listed.segments };
      $('recording-detail').hidden = false;
      $('recording-detail').dataset.recordingId = id;
      $('recording-title').textContent = `${recording.type} recording, ${recording.status}, `
        + `${Math.round(recording.duration)} s, ${listed.total} segments`
        + (recording.segmentsComplete ? '' : ' (more coming)');
      $('record-stop').hidden = !(recording.type === 'manual' && recording.status === 'recording');
      if (!changed) return;
      const strip = [];
      for (const segment of listed.segments) {
        const item = document.createElement('button');
        item.type = 'button';
        item.className = 'segment';
        item.id = `segment-${segment.id}`;
        item.title = `${new Date(ms(segment.startTime)).toLocaleTimeString()}, ${segment.duration} s, ${segment.format}`;
        if (segment.thumbnailPath) {
          const img = document.createElement('img');
          img.alt = item.title;
          img.src = blobUrl(await apiBlob(segment.thumbnailPath));
          item.append(img);
        } else {
          item.textContent = item.title;
        }
        item.addEventListener('click', () => act('segment', () => play(segment, 0)));
        strip.push(item);
      }
      $('segment-strip').replaceChildren(...strip);
      if (announce) say(`Recording ${id}: ${listed.total} segments.`);
    }

    async function play(segment, offset) {
      if (segment.format !== 'mp4') {
        say('This segment is MPEG-TS: download it, or use the live HLS playlist.');
        return;
      }
      const video = $('segment-video');
      const old = video.src;
      video.src = blobUrl(await apiBlob(segment.filePath));
      if (old) { URL.revokeObjectURL(old); urls.delete(old); }
      video.hidden = false;
      video.dataset.segmentId = segment.id;
      video.dataset.offset = String(offset);
      video.addEventListener('loadedmetadata', () => { video.currentTime = offset; }, { once: true });
      await video.play().catch(() => {});
      say(`Playing segment from ${new Date(ms(segment.startTime)).toLocaleTimeString()}.`);
    }

    // A click on the time bar: the segment covering that moment, from that moment.
    function playAt(event) {
      if (!current || !current.segments.length) return;
      const bar = $('segment-bar').getBoundingClientRect();
      const start = ms(current.recording.startTime);
      const end = ms(current.recording.endTime);
      const moment = start + ((event.clientX - bar.left) / bar.width) * (end - start);
      const segment = current.segments.find((s) => ms(s.startTime) <= moment && moment < ms(s.endTime))
        ?? current.segments[current.segments.length - 1];
      act('segment', () => play(segment, Math.max(0, (moment - ms(segment.startTime)) / 1000)));
    }

    // Open a recording and play it from `moment` (ms since the epoch).
    async function seek(camera, id, moment) {
      if (!readable) {
        say('Playing recordings needs the recordings:read scope.');
        return;
      }
      if (cameraId !== camera) await show(camera);
      await open(id, false);
      pending = { id, moment };
      await playPending();
    }

    function markMoment(moment) {
      const bar = $('segment-bar');
      const start = ms(current.recording.startTime);
      const span = Math.max(1, ms(current.recording.endTime) - start);
      let mark = bar.querySelector('.moment');
      if (!mark) {
        mark = document.createElement('div');
        mark.className = 'moment';
        bar.append(mark);
      }
      mark.style.left = `${Math.min(100, Math.max(0, (100 * (moment - start)) / span))}%`;
      mark.title = new Date(moment).toLocaleTimeString();
    }

    async function playPending() {
      if (!pending || !current || current.recording.id !== pending.id) return;
      const { moment } = pending;
      markMoment(moment);
      // The segment holding the moment; before the first keyframe (where the first segment
      // begins), the first one, as GET /events/:id answers.
      const first = current.segments[0];
      const segment = current.segments.find((s) => ms(s.startTime) <= moment && moment <= ms(s.endTime))
        ?? (current.recording.type === 'manual' && first && moment < ms(first.startTime) ? first : undefined);
      if (!segment) {
        if (current.recording.segmentsComplete && current.segments.length < SEGMENT_LIMIT) {
          pending = null;
          say('No segment of this recording holds that moment (removed by retention?).');
        } else {
          say(`The segment holding ${new Date(moment).toLocaleTimeString()} is not written yet; it plays once it is.`);
        }
        return;
      }
      pending = null;
      await play(segment, Math.max(0, (moment - ms(segment.startTime)) / 1000));
    }

    async function startRecording() {
      const settings = { segmentDuration: Number($('record-duration').value), format: $('record-format').value };
      const started = await api(`/api/v1/cameras/${cameraId}/recordings/start`, { method: 'POST', json: { settings } });
      say(`Recording ${started.id} started.`);
      await refresh();
      await open(started.id, false);
    }

    async function stopRecording() {
      const stopped = await api(`/api/v1/recordings/${current.recording.id}/stop`, { method: 'POST' });
      say(`Recording stopped after ${Math.round(stopped.duration)} s; its last segments follow.`);
      await refresh();
      await open(stopped.id, false);
    }

    $('record-form').addEventListener('submit', (event) => {
      event.preventDefault();
      act('record', startRecording);
    });
    $('record-stop').addEventListener('click', () => act('record-stop', stopRecording));
    $('segment-bar').addEventListener('click', playAt);
    $('recordings-reload').addEventListener('click', () => act('recordings', refresh));
    return { show, hide, seek };
  };
})();
