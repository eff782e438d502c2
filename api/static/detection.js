// Per-camera detection settings on the viewer page: GET/PUT /api/v1/cameras/:id/detection.
// On, interval and confidence, motion (on, sensitivity, minArea), object types, and regions
// drawn by clicking points over a snapshot of the camera (normalized [x, y], 0..1, origin
// top-left, as the API takes them).
//
// Saving sends every field the form shows, so the camera then sets them all itself (fields
// it does not send would follow the global settings). Loaded before viewer.js, which calls
// `vasDetectionEditor({api, apiBlob, act, say, scopes})` once per sign-in.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const BASE = '/api/v1';
  const OBJECT_TYPES = ['person', 'vehicle', 'animal'];
  const SVG = 'http://www.w3.org/2000/svg';

  window.vasDetectionEditor = ({ api, apiBlob, act, say, scopes }) => {
    const can = (scope) => scopes.includes('admin') || scopes.includes(scope);
    let cameraId = null;
    let regions = []; // [{name, enabled, coordinates: [[x, y], ...]}]
    let drawing = null; // the points of the region being drawn
    let snapshotUrl = null;

    // --- the drawing over the snapshot ------------------------------------------------------

    function svgNode(tag, attributes) {
      const node = document.createElementNS(SVG, tag);
      for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
      return node;
    }

    function paint() {
      const svg = $('region-canvas');
      const shapes = regions.map((region, index) => svgNode('polygon', {
        points: region.coordinates.map(([x, y]) => `${x},${y}`).join(' '),
        class: `region${region.enabled ? '' : ' disabled'}`,
        'data-index': String(index),
      }));
      if (drawing) {
        shapes.push(svgNode('polyline', {
          points: drawing.map(([x, y]) => `${x},${y}`).join(' '), class: 'drawing' }));
        for (const [x, y] of drawing) shapes.push(svgNode('circle', { cx: x, cy: y, r: 0.008, class: 'drawing' }));
      }
      svg.replaceChildren(...shapes);
      listRegions();
    }

    function listRegions() {
      const rows = regions.map((region, index) => {
        const li = document.createElement('li');
        li.dataset.index = String(index);
        const name = document.createElement('input');
        name.value = region.name;
        name.maxLength = 100;
        name.id = `region-name-${index}`;
        name.addEventListener('change', () => { region.name = name.value.trim() || `Region ${index + 1}`; });
        const on = document.createElement('input');
        on.type = 'checkbox';
        on.checked = region.enabled;
        on.id = `region-enabled-${index}`;
        on.addEventListener('change', () => { region.enabled = on.checked; paint(); });
        const label = document.createElement('label');
        label.append(on, ' on');
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.id = `region-remove-${index}`;
        remove.textContent = 'Remove';
        remove.addEventListener('click', () => { regions.splice(index, 1); paint(); });
        const points = document.createElement('span');
        points.textContent = `${region.coordinates.length} points`;
        li.append(name, label, points, remove);
        return li;
      });
      $('region-list').replaceChildren(...rows);
      $('region-new').hidden = Boolean(drawing);
      $('region-finish').hidden = !drawing;
      $('region-cancel').hidden = !drawing;
    }

    // A click on the snapshot while drawing: a point, normalized to the picture.
    function addPoint(event) {
      if (!drawing) return;
      const area = $('region-canvas').getBoundingClientRect();
      const clamp = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
      drawing.push([clamp((event.clientX - area.left) / area.width),
        clamp((event.clientY - area.top) / area.height)]);
      paint();
    }

    function finishRegion() {
      if (!drawing || drawing.length < 3) {
        say('A region needs at least 3 points: click on the picture.');
        return;
      }
      regions.push({ name: `Region ${regions.length + 1}`, enabled: true, coordinates: drawing });
      drawing = null;
      paint();
    }

    // --- load and save ----------------------------------------------------------------------

    function fill(settings) {
      $('detect-enabled').checked = settings.enabled;
      $('detect-interval').value = settings.detectionInterval;
      $('detect-confidence').value = settings.minConfidence;
      $('motion-enabled').checked = settings.motionDetection.enabled;
      $('motion-sensitivity').value = settings.motionDetection.sensitivity;
      $('motion-min-area').value = settings.motionDetection.minArea;
      for (const type of OBJECT_TYPES) {
        const found = settings.objectTypes.find((t) => t.type === type);
        $(`object-${type}`).checked = Boolean(found?.enabled);
        $(`object-${type}-confidence`).value = found?.minConfidence ?? settings.minConfidence;
      }
      regions = settings.regions.map((r) => ({ name: r.name, enabled: r.enabled, coordinates: r.coordinates }));
      drawing = null;
      paint();
    }

    function document_() {
      const number = (id) => Number($(id).value);
      return {
        enabled: $('detect-enabled').checked,
        detectionInterval: number('detect-interval'),
        minConfidence: number('detect-confidence'),
        motionDetection: {
          enabled: $('motion-enabled').checked,
          sensitivity: number('motion-sensitivity'),
          minArea: number('motion-min-area'),
        },
        objectTypes: OBJECT_TYPES.map((type) => ({
          type, enabled: $(`object-${type}`).checked, minConfidence: number(`object-${type}-confidence`),
        })),
        regions: regions.map((r) => ({ name: r.name, enabled: r.enabled, coordinates: r.coordinates })),
      };
    }

    async function snapshot() {
      const img = $('region-snapshot');
      if (snapshotUrl) URL.revokeObjectURL(snapshotUrl);
      snapshotUrl = null;
      try {
        snapshotUrl = URL.createObjectURL(await apiBlob(`${BASE}/cameras/${cameraId}/snapshot`));
        img.src = snapshotUrl;
        await img.decode();
        $('region-area').style.aspectRatio = `${img.naturalWidth} / ${img.naturalHeight}`;
        $('region-area').dataset.snapshot = 'ready';
      } catch (error) {
        // Not streaming (409) or no frame yet: regions can still be drawn on a blank frame.
        img.removeAttribute('src');
        $('region-area').dataset.snapshot = 'none';
        say(`No snapshot (${error.message ?? error}); the regions are drawn on a blank 16:9 frame.`);
      }
    }

    async function open(id) {
      if (!id) {
        say('Choose a camera first.');
        return;
      }
      cameraId = id;
      $('detection-form').hidden = false;
      $('detection-form').dataset.cameraId = id;
      const settings = await api(`${BASE}/cameras/${id}/detection`);
      fill(settings);
      await snapshot();
      say('Detection settings loaded: click "New region", then points on the picture.');
    }

    async function save() {
      if (drawing) finishRegion();
      const answer = await api(`${BASE}/cameras/${cameraId}/detection`, { method: 'PUT', json: document_() });
      fill(answer.settings);
      $('detection-form').dataset.saved = String(Date.now());
      say(`Detection settings of the camera saved (${answer.settings.regions.length} regions).`);
    }

    function setCameras(cameras) {
      const select = $('detection-camera');
      const chosen = select.value;
      select.replaceChildren(...cameras.map((c) => new Option(c.name, c.id)));
      if (cameras.some((c) => c.id === chosen)) select.value = chosen;
    }

    async function start() {
      if (!can('detection:read') || !can('cameras:read')) return;
      $('detection-panel').hidden = false;
      $('detection-save').disabled = !can('detection:write');
      const page = await api(`${BASE}/cameras?limit=100`);
      setCameras(page.cameras.map((c) => ({ id: c.id, name: c.name })));
    }

    function stop() {
      cameraId = null;
      regions = [];
      drawing = null;
      if (snapshotUrl) URL.revokeObjectURL(snapshotUrl);
      snapshotUrl = null;
      $('detection-panel').hidden = true;
      $('detection-form').hidden = true;
    }

    $('detection-load').onclick = () => act('detection', () => open($('detection-camera').value));
    $('detection-form').onsubmit = (event) => {
      event.preventDefault();
      act('detection-save', save);
    };
    $('region-new').onclick = () => { drawing = []; paint(); };
    $('region-finish').onclick = finishRegion;
    $('region-cancel').onclick = () => { drawing = null; paint(); };
    $('region-canvas').onclick = addPoint;
    return { start, stop };
  };
})();
