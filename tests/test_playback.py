"""The playback meter: when the caller started and stopped hearing a prompt, measured on real speech recordings."""
import random
from pathlib import Path

import pytest

from gateway.dialogue.playback import PlaybackMeter, SpeakingRate, heard_text, is_voiced

AUDIO = Path(__file__).resolve().parent.parent / "chatline" / "audio"
SILENCE = b"\xff" * 160


def recording(name: str) -> bytes:
    return (AUDIO / f"{name}.ulaw").read_bytes()


def frames(audio: bytes):
    """20 ms frames, the last one padded with silence."""
    audio += b"\xff" * (-len(audio) % 160)
    return [audio[i:i + 160] for i in range(0, len(audio), 160)]


def play(meter: PlaybackMeter, audio: bytes, start_ms: int = 0) -> list:
    """Feed `audio` as Twilio's outbound frames from `start_ms`; the changes the meter reported."""
    changes = []
    for n, frame in enumerate(frames(audio)):
        change = meter.feed(frame, start_ms + 20 * n)
        if change is not None:
            changes.append((change.kind, change.at_ms))
    return changes


def silence(ms: int) -> bytes:
    return SILENCE * (ms // 20)


def line_noise(ms: int, seed: int = 1) -> bytes:
    """Quiet hiss around +-100 of 32767, as a phone line's comfort noise: mu-law bytes near 0xFF/0x7F."""
    rng = random.Random(seed)
    return bytes(rng.choice([0xFF, 0xFE, 0xFD, 0xFC, 0x7F, 0x7E, 0x7D, 0x7C]) for _ in range(ms * 8))


def test_speech_frames_are_voiced_and_silence_or_hiss_is_not():
    speech = frames(recording("book_a_table"))
    assert sum(map(is_voiced, speech)) > len(speech) * 0.6
    assert not is_voiced(SILENCE) and not is_voiced(b"\x7f" * 160)
    assert not any(map(is_voiced, frames(line_noise(1000))))
    assert not is_voiced(b"\x00" + SILENCE[1:])  # one loud sample is a click, not speech


def test_a_prompt_starts_and_ends_where_its_speech_does():
    speech = recording("book_a_table")
    speech_ms = len(speech) // 8
    changes = play(meter := PlaybackMeter(), silence(500) + speech + silence(1000))
    assert changes[0][0] == "started" and 500 <= changes[0][1] <= 560
    assert changes[1][0] == "ended" and abs(changes[1][1] - (500 + speech_ms)) <= 60
    assert len(changes) == 2 and not meter.speaking and meter.ended_ms == changes[1][1]


def test_pauses_between_words_and_sentences_do_not_end_a_prompt():
    """TTS pauses between sentences (and between one <Say> and the next): one prompt, ended after the last word."""
    prompt = recording("book_a_table") + silence(400) + recording("for_four_people") + silence(600) + recording("good")
    changes = play(PlaybackMeter(), prompt + silence(1000))
    assert [kind for kind, _ in changes] == ["started", "ended"]
    assert abs(changes[1][1] - len(prompt) // 8) <= 60


def test_a_long_silence_ends_the_prompt_and_the_next_speech_is_a_new_one():
    changes = play(PlaybackMeter(), recording("hello") + silence(2000) + recording("good") + silence(1000))
    assert [kind for kind, _ in changes] == ["started", "ended", "started", "ended"]
    assert changes[2][1] >= len(recording("hello")) // 8 + 1980


def test_line_noise_and_clicks_start_no_prompt():
    noisy = line_noise(2000) + b"\x00" * 8 + line_noise(1000, seed=2)
    assert play(PlaybackMeter(), noisy) == []


def test_missing_frames_count_as_silence():
    """Twilio may send no outbound frames while nothing plays: the gap ends the prompt, dated to its last speech."""
    meter = PlaybackMeter()
    speech = recording("hello")
    play(meter, speech)
    assert meter.speaking
    change = meter.feed(SILENCE, 5000)
    assert change is not None and change.kind == "ended" and abs(change.at_ms - len(speech) // 8) <= 40


def test_the_inbound_clock_ends_a_prompt_when_no_outbound_frame_comes():
    meter = PlaybackMeter()
    play(meter, recording("hello"))
    assert meter.silence_until(len(recording("hello")) // 8 + 300) is None and meter.speaking
    assert meter.silence_until(len(recording("hello")) // 8 + 800).kind == "ended"
    assert meter.silence_until(99_999) is None  # reported once


def test_frames_without_timestamps_follow_one_another():
    meter = PlaybackMeter()
    changes = [meter.feed(f, None) for f in frames(silence(200) + recording("hello") + silence(1000))]
    kinds = [(c.kind, c.at_ms) for c in changes if c]
    assert kinds[0][0] == "started" and 200 <= kinds[0][1] <= 260 and kinds[1][0] == "ended"


def test_heard_ms_and_playing_at():
    meter = PlaybackMeter()
    speech = recording("book_a_table")
    play(meter, silence(1000) + speech + silence(1000))
    end = meter.ended_ms
    assert meter.playing_at(1100) and not meter.playing_at(900) and not meter.playing_at(end + 10)
    assert meter.heard_ms(900) == 0 and meter.heard_ms(1000 + 500) in range(460, 541)
    assert meter.heard_ms(99_999) == end - meter.started_ms


def test_speaking_rate_is_learnt_from_prompts_heard_to_their_end():
    rate = SpeakingRate(13.0)
    text = "Good evening, Trattoria Bella. How can I help you this evening?"
    assert rate.share(text, 2000) == pytest.approx(26 / len(text))
    rate.prompt_heard(text, int(len(text) / 33 * 1000))  # a voice of 33 characters a second
    assert rate.learnt and rate.chars_per_second == pytest.approx(33, rel=0.01)
    assert rate.share(text, int(len(text) / 33 * 1000)) == pytest.approx(1.0, abs=0.01)
    rate.prompt_heard("Hi.", 300)  # too short to tell the pace: ignored
    assert rate.chars_per_second == pytest.approx(33, rel=0.01)


@pytest.mark.parametrize("share, heard", [
    (1.0, "Good evening, Trattoria Bella. How can I help you?"), (0.0, ""),
    (0.5, "Good evening, Trattoria"), (0.3, "Good evening,"), (0.62, "Good evening, Trattoria Bella."), (0.68, "Good evening, Trattoria Bella. How"),
])
def test_heard_text_goes_back_to_the_last_whole_word(share, heard):
    assert heard_text("Good evening, Trattoria Bella. How can I help you?", share) == heard


def test_cost_per_frame_is_small():
    """The outbound track must cost almost nothing: well under 20 microseconds a frame even on a loaded machine."""
    import time
    meter, audio = PlaybackMeter(), frames(recording("book_a_table") + silence(1000)) * 20
    started = time.perf_counter()
    for n, frame in enumerate(audio):
        meter.feed(frame, 20 * n)
    assert (time.perf_counter() - started) / len(audio) < 20e-6


def test_a_read_taken_whole_reports_exactly_what_its_frames_one_by_one_do():
    """feed_read's shortcut (a read of steady silence or steady speech) changes nothing of what the meter reports:
    after every read the same changes at the same times, and the same state, as frame by frame, through speech,
    pauses, line noise, a click, a lone loud frame, a dropped frame, frames without a timestamp and a short frame."""
    loud_frame = next(frame for frame in frames(recording("hello")) if is_voiced(frame))
    audio = (silence(300) + recording("book_a_table") + silence(400) + line_noise(300) + b"\x00" + SILENCE[1:]
             + silence(40) + loud_frame + silence(160) + recording("goodbye") + silence(1500) + recording("hello")
             + silence(900))
    timed = [(frame, 20 * n) for n, frame in enumerate(frames(audio))]
    del timed[90]  # a frame that never came
    timed[40] = (timed[40][0], None)
    timed[-1] = (timed[-1][0][:80], timed[-1][1])
    one_by_one, whole = PlaybackMeter(), PlaybackMeter()
    reported = []
    for n in range(0, len(timed), 5):
        read = timed[n:n + 5]
        expected = [(c.kind, c.at_ms) for c in (one_by_one.feed(f, at) for f, at in read) if c is not None]
        assert [(c.kind, c.at_ms) for c in whole.feed_read(read)] == expected
        assert vars(whole) == vars(one_by_one), f"after the read at frame {n}"
        reported += expected
    assert [kind for kind, _ in reported] == ["started", "ended"] * 3
