// The health panel of the viewer page: a stream's health answer (GET /v2/streams/:id/health)
// as text, each value also in `data-value`. viewer.js takes `vasShowHealth` off `window`.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);

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

  window.vasShowHealth = showHealth;
})();
