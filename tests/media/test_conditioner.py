"""PacketConditioner and ContinuousTimeline: what sinks may rely on."""

from __future__ import annotations

from fractions import Fraction

from media.conditioner import PacketConditioner
from media.h264 import NAL_SPS, ParameterSets, nal_type, parameter_sets, split_annexb
from media.packet import MediaPacket
from media.timeline import ContinuousTimeline
from tests.media.conftest_media import encode_h264

TB = Fraction(1, 90000)


def packet(ticks: int, wallclock: float, keyframe: bool = False, data: bytes = b"") -> MediaPacket:
    return MediaPacket(
        data=data or b"\x00\x00\x00\x01\x41\x9a",
        pts=ticks,
        dts=ticks,
        time_base=TB,
        is_keyframe=keyframe,
        wallclock=wallclock,
    )


def test_timeline_passes_monotonic_packets_unchanged() -> None:
    timeline = ContinuousTimeline()
    first, second = packet(1000, 10.0), packet(4000, 10.033)
    assert timeline.rebase(first) is first
    assert timeline.rebase(second) is second


def test_timeline_continues_after_restart_by_wallclock_gap() -> None:
    timeline = ContinuousTimeline()
    timeline.rebase(packet(900_000, 10.0))
    # The source came back 2.5 s later with timestamps starting over.
    after = timeline.rebase(packet(0, 12.5, keyframe=True), restart=True)
    assert after.dts == 900_000 + int(2.5 * 90000)
    following = timeline.rebase(packet(3000, 12.533))
    assert following.dts == after.dts + 3000
    # Backwards without a restart signal is rebased too.
    back = timeline.rebase(packet(0, 12.6))
    assert back.dts is not None and following.dts is not None and back.dts > following.dts


def test_conditioner_drops_until_keyframe_and_adds_parameter_sets() -> None:
    encoded = encode_h264("main", 320, 240, global_header=True, frames=4)
    conditioner = PacketConditioner()
    conditioner.new_connection(parameter_sets(encoded.extradata), fps=30)
    assert conditioner.condition(packet(0, 1.0, data=encoded.packets[1])) == []
    [keyframe] = conditioner.condition(packet(3000, 1.03, keyframe=True, data=encoded.packets[0]))
    assert nal_type(split_annexb(keyframe.data)[0]) == NAL_SPS
    assert keyframe.discontinuity  # the first packet of a connection says so
    [following] = conditioner.condition(packet(6000, 1.06, data=encoded.packets[1]))
    assert not following.discontinuity
    # After a reconnect: dropped again until a keyframe, then one continuous timeline.
    conditioner.new_connection(ParameterSets())
    assert conditioner.condition(packet(0, 3.0, data=encoded.packets[1])) == []
    [again] = conditioner.condition(packet(0, 3.1, keyframe=True, data=encoded.packets[0]))
    assert again.dts is not None and again.dts > 6000 and again.discontinuity
    assert nal_type(split_annexb(again.data)[0]) == NAL_SPS  # earlier sets still known


def test_untimed_first_keyframe_is_placed_one_frame_before_the_next_packet() -> None:
    encoded = encode_h264("main", 320, 240, frames=3)
    conditioner = PacketConditioner()
    conditioner.new_connection(ParameterSets(), fps=15)
    conditioner.hold_untimed(encoded.packets[0], is_keyframe=True, wallclock=5.0)
    held, following = conditioner.condition(packet(6000, 5.07, data=encoded.packets[1]))
    assert held.is_keyframe and held.data == encoded.packets[0] and held.wallclock == 5.0
    assert (held.pts, held.dts) == (0, 0)  # 6000 - one 15 fps frame in 90 kHz ticks
    assert following.pts == 6000
    # Untimed packets later in the connection are simply dropped.
    conditioner.hold_untimed(encoded.packets[1], is_keyframe=False, wallclock=5.2)
    assert len(conditioner.condition(packet(12000, 5.13, data=encoded.packets[2]))) == 1
