// Snapshots and bookmarks of the selected stream on the viewer page: ask for one, wait for
// its job, show the image or the clip (blob URLs: the files need the token).
// viewer.js calls `vasCaptures({api, apiBlob, untilReady, say})` once.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  // Bounds our own waits, so that a lost answer cannot leave a button disabled forever.
  const SNAPSHOT_LIMIT_MS = 30000;
  // A live clip can only be cut once its end has been recorded and its last segment closed.
  const BOOKMARK_GRACE_MS = 60000;

  window.vasCaptures = ({ api, apiBlob, untilReady, say }) => {
    const blobUrls = new Map(); // element id -> object URL, revoked when replaced

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

    async function snapshot(streamId) {
      say('Taking a snapshot…');
      const created = await api(`/v2/streams/${streamId}/snapshots`, {
        method: 'POST',
        json: { source: 'live', created_by: 'viewer' },
      });
      const ready = await untilReady(`/v2/snapshots/${created.id}`, Date.now() + SNAPSHOT_LIMIT_MS, 500);
      setBlob('snapshot-image', await apiBlob(ready.image_url));
      $('snapshot-caption').textContent =
        `Snapshot ${ready.width}×${ready.height}, ${new Date(ready.timestamp).toLocaleTimeString()}`;
      say('Snapshot ready.');
    }

    async function bookmark(streamId) {
      say('Bookmarking: the clip is cut once the next 5 s are recorded…');
      const created = await api(`/v2/streams/${streamId}/bookmarks`, {
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

    // Signing out: forget every image and clip.
    function clear() {
      for (const id of [...blobUrls.keys()]) setBlob(id, null);
    }

    return { snapshot, bookmark, clear };
  };
})();
