"""The viewer page's sound (docs/codecs.md): the camera's audio arrives in Chromium as Opus
over WHEP, the video starts muted, the sound button unmutes it, and Chromium's own
`getStats` audio level shows the tone."""

from __future__ import annotations

from typing import Any

# Run before the page creates its peer connection: keeps it where the test can ask it for
# its stats (the page's own code is unchanged).
SPY_PEER_CONNECTIONS = """() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
}"""

# The newest peer connection's received audio, once its level is above zero (or 10 s).
AUDIO_STATS = """async () => {
  const until = Date.now() + 10000;
  let last = null;
  while (Date.now() < until) {
    const pc = window.__pcs[window.__pcs.length - 1];
    const stats = [...(await pc.getStats()).values()];
    const inbound = stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'audio');
    if (inbound) {
      const codec = stats.find((s) => s.id === inbound.codecId);
      last = { packets: inbound.packetsReceived, level: inbound.audioLevel ?? 0,
               energy: inbound.totalAudioEnergy ?? 0, mime: codec && codec.mimeType };
      if (last.level > 0 && last.packets > 0) return last;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return last;
}"""


def check_sound(page: Any, click: Any) -> dict[str, Any]:
    """Muted at first; unmuted by the button; the camera's Opus audio is heard (level > 0)."""
    state = page.evaluate("""() => ({ muted: document.getElementById('video').muted,
        tracks: document.getElementById('video').srcObject.getAudioTracks().length })""")
    assert state == {"muted": True, "tracks": 1}, state
    click(page, "sound")
    unmuted = page.evaluate("""() => [document.getElementById('video').muted,
        document.getElementById('sound').textContent]""")
    assert unmuted == [False, "Mute"], unmuted
    stats = page.evaluate(AUDIO_STATS, timeout=20)
    assert stats and stats["mime"] == "audio/opus" and stats["packets"] > 0, stats
    assert stats["level"] > 0, stats  # the tone, not silence
    return dict(stats)
