"""Dropped and repeated Media Stream frames keep the recognizer's timeline true."""
from gateway.twilio.timeline import MAX_GAP_MS, AudioTimeline

FRAME = b"\x01" * 160  # 20 ms


def test_contiguous_frames_pass_through():
    timeline = AudioTimeline()
    assert [timeline.place(FRAME, t) for t in (0, 20, 40)] == [FRAME] * 3 and timeline.filled_ms == 0


def test_gap_is_filled_with_silence():
    timeline = AudioTimeline()
    timeline.place(FRAME, 0)
    out = timeline.place(FRAME, 100)  # frames at 20..80 ms never arrived
    assert out == b"\xff" * 640 + FRAME and timeline.filled_ms == 80
    assert timeline.place(FRAME, 120) == FRAME


def test_repeated_frame_is_dropped_and_jitter_is_tolerated():
    timeline = AudioTimeline()
    timeline.place(FRAME, 0)
    timeline.place(FRAME, 20)
    assert timeline.place(FRAME, 20) == b"" and timeline.dropped == 1
    assert timeline.place(FRAME, 45) == FRAME  # 5 ms late: jitter, not a gap


def test_huge_gap_is_capped_and_missing_timestamps_are_trusted():
    timeline = AudioTimeline()
    timeline.place(FRAME, 0)
    assert len(timeline.place(FRAME, 3_600_000)) == MAX_GAP_MS * 8 + 160
    assert timeline.place(FRAME, None) == FRAME
