"""The `--record` mixdown: the caller's streamed audio and the bot's <Say> text, placed on one call timeline."""
from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from chatline import sound


@dataclass
class CallTimeline:
    """What was heard on the call, in call seconds (wall seconds x speed) from the call's start."""

    duration: float = 0.0
    caller: list[tuple[float, bytes]] = field(default_factory=list)  # (start, mu-law audio)
    bot: list[tuple[float, str, float | None]] = field(default_factory=list)  # (start, text, cut off at)


def timeline_from_events(events: Sequence[tuple], caller_audio: Sequence[bytes], speed: float) -> CallTimeline:
    """Rebuild the call from the stand-in's events; `caller_audio` is each spoken turn's audio, in order."""
    timeline = CallTimeline()
    spoken = iter(caller_audio)
    for index, (t, kind, detail) in enumerate(events):
        at = t * speed
        if kind == "caller-speaks":
            audio = next(spoken, None)
            if audio is not None:
                timeline.caller.append((at, audio))
        elif kind == "say":
            cut = None
            for later_t, later_kind, later_detail in events[index + 1:]:
                if later_kind == "say":
                    break
                if later_kind == "say-interrupted" and later_detail == detail:
                    cut = later_t * speed  # a REST update stopped this <Say> mid-sentence
                    break
            timeline.bot.append((at, str(detail), cut))
        elif kind == "hangup" and not timeline.duration:
            timeline.duration = at
    if not timeline.duration and events:
        timeline.duration = events[-1][0] * speed
    return timeline


def _place(track: np.ndarray, start: float, samples: np.ndarray) -> np.ndarray:
    """Add `samples` into `track` at `start` seconds, growing the track if they run past its end."""
    offset = max(0, int(round(start * sound.RATE)))
    if offset + len(samples) > len(track):
        track = np.concatenate([track, np.zeros(offset + len(samples) - len(track))])
    track[offset:offset + len(samples)] += samples
    return track


def write_call_wav(path: str | Path, timeline: CallTimeline) -> tuple[float, list[str]]:
    """Write the call as an 8 kHz 16-bit mono WAV; returns its length in seconds and warnings (no espeak-ng)."""
    warnings = []
    track = np.zeros(int(round(timeline.duration * sound.RATE)))
    for start, audio in timeline.caller:
        track = _place(track, start, sound.mulaw_decode(audio).astype(np.float64))
    if timeline.bot and not sound.have("espeak-ng"):
        warnings.append("espeak-ng is not installed, so the bot's replies are silence in the recording "
                        "(Debian: apt-get install espeak-ng)")
    elif timeline.bot:
        for start, text, cut in timeline.bot:
            speech = sound.speak(text, voice=sound.BOT_VOICE, words_per_minute=175).astype(np.float64)
            if cut is not None:
                speech = speech[:max(0, int((cut - start) * sound.RATE))]
            track = _place(track, start, speech)
    pcm = np.clip(np.round(track), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sound.RATE)
        wav.writeframes(pcm.tobytes())
    return len(pcm) / sound.RATE, warnings
