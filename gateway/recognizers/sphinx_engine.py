"""The pocketsphinx streaming engine: endpointed utterances from 8 kHz mu-law, hint grammars, a decoder pool."""
from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pocketsphinx

from gateway.audio import SAMPLE_RATE, mulaw_to_pcm16_16k, upsample_2x

# The name the engine logged under before the split from sphinx.py: log filters and tests select it.
log = logging.getLogger("gateway.recognizers.sphinx")

RATE = 16000  # the bundled en-us acoustic model is wideband; 8 kHz calls are upsampled by gateway/audio.py
FRAME_SECONDS = 0.03  # one pocketsphinx Endpointer frame at 16 kHz
PREROLL_FRAMES = 10  # the endpointer reports onsets late on soft consonants ("what"): decode 0.3 s before it
MAX_UTTERANCE_FRAMES = 1000  # 30 s: cut endless "speech" (line noise, music on hold) into decodable pieces
# Cepstral mean of call audio as this engine sees it (bench/bench_sphinx.py --cmn). The model's own prior is
# for wideband microphones; with it every call's first utterance is decoded badly ("good" -> "hello").
TELEPHONE_CMN = "48.66,14.71,-27.77,35.44,-30.18,8.76,-4.10,-10.63,-5.49,-11.90,5.46,-7.11,-2.26"
# Comfort noise at a telephone line's floor (~-70 dBFS, band-limited to 4 kHz like the call) plus +-1 LSB over
# the whole band: on Twilio's digital-zero silence and empty 4-8 kHz band the model's silence fits so badly that
# words absorb the pauses ("good" heard as "hello"). A fixed pattern keeps decoding deterministic.
LINE_NOISE_STD = 10.0


def _comfort_noise() -> np.ndarray:
    """One second of that noise at 16 kHz; added to the decoder's input only, never to what the endpointer hears."""
    line, _ = upsample_2x(np.random.default_rng(0).normal(0, 1000, RATE // 2 + 100))
    line = line[200:200 + RATE] * (LINE_NOISE_STD / line[200:200 + RATE].std())
    return (np.rint(line) + np.rint(np.random.default_rng(1).normal(0, 1, RATE))).astype(np.int32)


_NOISE = _comfort_noise()
# Common words competing with the hints: out-of-grammar speech lands on one of them (or on an incomplete
# phrase) instead of being forced onto the nearest hint. Single words only: sequences of them search too slowly.
DECOYS = """a about after again all also am an and any are as at back be because been before being but by came
can come could day did do does down each even first for from get give go going got had has have he her here
him his how i if in into is it just know like look made make many may me more most much my new no not now of
off on one only or other our out over people put said say see she so some take than that the their them then
there these they thing think this those time to two up us very want was way we well went were what when where
which who why will with work would year yes you your""".split()
DECOY_DISTANCE = 2  # a decoy within two phones of a hint word ("look" vs "good") would steal its answers
MAX_UNEXPLAINED_FRAMES = 80  # 10 ms frames of silence an utterance may hold beyond its words' own length
_LM = "lm"


def normalize_phrase(text: str) -> str:
    """Lowercase words of a phrase, as the dictionary spells them (apostrophes kept, other punctuation dropped)."""
    return " ".join(re.sub(r"[^a-z0-9']+", " ", text.lower()).split())


def _phone_distance(a: list[str], b: list[str]) -> int:
    """Edit distance between two phone sequences."""
    row = list(range(len(b) + 1))
    for i, pa in enumerate(a, 1):
        prev, row[0] = row[:], i
        for j, pb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (pa != pb))
    return row[-1]


def build_grammar(hints: Sequence[str], lookup: Callable[[str], str | None],
                  decoys: Sequence[str] = DECOYS) -> tuple[str | None, tuple[str, ...]]:
    """Return (JSGF text or None, kept phrases): hint alternatives, plus the decoys not confusable with them."""
    kept: list[str] = []
    for hint in hints:
        phrase = normalize_phrase(hint)
        missing = [w for w in phrase.split() if lookup(w) is None]
        if missing:
            log.warning("sphinx: dropping hint %r: not in the dictionary: %s", hint, ", ".join(missing))
        elif phrase and phrase not in kept:
            kept.append(phrase)
    if not kept:
        return None, ()
    hint_phones = [lookup(w).split() for w in {w for p in kept for w in p.split()}]
    decoys = [d for d in decoys if all(_phone_distance(lookup(d).split(), h) > DECOY_DISTANCE for h in hint_phones)]
    rules = [f"public <utterance> = <hint>{' | <decoy>' if decoys else ''};", f"<hint> = {' | '.join(kept)};"]
    rules += [f"<decoy> = {' | '.join(decoys)};"] if decoys else []
    return "\n".join(["#JSGF V1.0;", "grammar hints;", *rules, ""]), tuple(kept)


class _Decoder:
    """A pocketsphinx Decoder plus the searches added to it; used by one call at a time."""

    def __init__(self) -> None:
        # No LM at construction (0.1 s, ~27 MB); the n-gram search (~0.3 s, ~60 MB) is added when first needed.
        self.decoder = pocketsphinx.Decoder(lm=None, loglevel="FATAL")
        self.searches: OrderedDict[tuple[str, ...], tuple[str, tuple[str, ...]]] = OrderedDict()
        self._count, self._has_lm = 0, False

    def activate(self, hints: tuple[str, ...]) -> tuple[str, ...]:
        """Activate the grammar for `hints` (or the full LM); returns the phrases it accepts, () for the LM."""
        if hints not in self.searches:
            jsgf, kept = build_grammar(hints, self.decoder.lookup_word) if hints else (None, ())
            if jsgf is None:
                if hints:
                    log.warning("sphinx: no usable hint among %r; using the full language model", hints)
                if not self._has_lm:
                    self.decoder.add_lm_file(_LM, pocketsphinx.get_model_path("en-us/en-us.lm.bin"))
                    self._has_lm = True
                self.searches[hints] = (_LM, ())
            else:
                self._count += 1
                self.searches[hints] = (f"hints{self._count}", kept)
                self.decoder.add_jsgf_string(f"hints{self._count}", jsgf)
            if len(self.searches) > 16:  # bound the memory of long-lived pooled decoders; the LM stays loaded
                name, _ = self.searches.pop(next(iter(self.searches)))
                if name != _LM:
                    self.decoder.remove_search(name)
        self.searches.move_to_end(hints)
        name, kept = self.searches[hints]
        self.decoder.activate_search(name)
        return kept


class _Pool:
    """Idle decoders kept for the next calls: loading the acoustic model per call would cost 0.1-0.4 s."""

    def __init__(self, keep: int = 4) -> None:
        self.keep, self.idle, self.lock = keep, [], threading.Lock()

    def acquire(self) -> _Decoder:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return _Decoder()

    def release(self, decoder: _Decoder) -> None:
        with self.lock:
            if len(self.idle) < self.keep:
                self.idle.append(decoder)


POOL = _Pool()


def preload(count: int = 1) -> None:
    """Load `count` decoders ahead of the first calls (e.g. at worker start)."""
    for d in [POOL.acquire() for _ in range(count)]:
        POOL.release(d)


class _Heard(NamedTuple):
    """One decoding pass's answer."""

    text: str
    confidence: float  # mean word posterior
    end: float | None  # end of the last word, seconds from the utterance start


@dataclass(frozen=True)
class Utterance:
    """One endpointed utterance: what was heard, whether it matched the hints, and where it lies in the stream."""

    text: str
    confidence: float  # mean word posterior
    start: float  # seconds of stream audio
    end: float  # end of the last word, seconds of stream audio
    accepted: bool  # False: out of grammar (text is what the decoder settled on, for logs)


class SphinxEngine:
    """Streaming recognition of one audio stream: 8 kHz mu-law in, endpointed utterances out via callbacks.

    Not thread-safe except `set_hints`; the owner feeds it from one thread. Callbacks run inside `feed`/`flush`.
    `fallback_to_lm` re-decodes out-of-grammar speech with the full LM, as Google transcribes it despite hints.
    """

    def __init__(self, hints: Sequence[str] = (), *, on_final: Callable[[Utterance], None],
                 on_partial: Callable[[str], None] | None = None,
                 on_speech: Callable[[bool, float], None] | None = None,
                 fallback_to_lm: bool = False, partial_every: float = 0.3) -> None:
        self._d: _Decoder | None = POOL.acquire()
        self._d.decoder.set_cmn(TELEPHONE_CMN)  # a new call is a new channel: forget the last caller's
        self._ep = pocketsphinx.Endpointer(sample_rate=RATE)
        self._on_final, self._on_partial, self._on_speech = on_final, on_partial, on_speech
        self._fallback, self._partial_frames = fallback_to_lm, max(1, round(partial_every / FRAME_SECONDS))
        self._hints, self._phrases = tuple(hints), ()
        self._tail, self._pending = None, b""  # upsampling filter state; 16 kHz bytes short of a frame
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=PREROLL_FRAMES + 20)  # (frame index, frame)
        self._frames = self._bytes = 0  # endpointer frames consumed, mu-law bytes fed
        self._utt: list[bytes] | None = None  # the current utterance's frames, as decoded
        self._utt_start, self._cmn, self._last_partial = 0, TELEPHONE_CMN, ""

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._bytes / SAMPLE_RATE

    @property
    def cmn(self) -> str:
        """The decoder's current cepstral mean estimate (what TELEPHONE_CMN is derived from)."""
        return self._d.decoder.get_cmn() if self._d else TELEPHONE_CMN

    def set_hints(self, hints: Sequence[str]) -> None:
        """Use these phrases (a grammar) or, if empty, the full language model from the next utterance on."""
        self._hints = tuple(hints)

    def feed(self, mulaw: bytes) -> None:
        """Consume 8 kHz mu-law audio of any length."""
        if self._d is None or not mulaw:
            return
        self._bytes += len(mulaw)
        pcm, self._tail = mulaw_to_pcm16_16k(mulaw, self._tail)
        data, size = self._pending + pcm.tobytes(), self._ep.frame_bytes
        whole = len(data) - len(data) % size
        self._pending = data[whole:]
        for i in range(0, whole, size):
            self._frame(data[i:i + size])

    def flush(self) -> None:
        """End of stream: finish the utterance in progress, if any."""
        if self._d is not None and self._utt is not None:
            rest = self._ep.end_stream(self._pending)
            if rest:
                self._process(rest)
            self._finish()
        self._pending = b""

    def close(self) -> None:
        """Abandon any utterance in progress and return the decoder to the pool."""
        d, self._d = self._d, None
        if d is not None:
            if self._utt is not None:
                d.decoder.end_utt()
            POOL.release(d)

    def _frame(self, frame: bytes) -> None:
        index, self._frames = self._frames, self._frames + 1
        was_speech = self._ep.in_speech
        speech = self._ep.process(frame)
        self._recent.append((index, frame))
        if speech is None:
            return
        if not was_speech:  # the endpointer hands back speech from its window start: decode a little before it
            onset = round(self._ep.speech_start / FRAME_SECONDS)
            preroll = [f for i, f in self._recent if onset - PREROLL_FRAMES <= i < onset]
            self._start(onset - len(preroll), preroll)
        elif self._utt is None:  # speech goes on after a forced cut
            self._start(index, [])
        self._process(speech)
        if not self._ep.in_speech or len(self._utt) >= MAX_UTTERANCE_FRAMES:
            self._finish()

    def _start(self, first_frame: int, preroll: list[bytes]) -> None:
        self._phrases = self._d.activate(self._hints)
        self._utt, self._utt_start, self._last_partial = [], first_frame, ""
        self._cmn = self._d.decoder.get_cmn()  # as adapted to this call so far; kept for re-decoding
        self._d.decoder.start_utt()
        if self._on_speech:
            self._on_speech(True, first_frame * FRAME_SECONDS)
        for frame in preroll:
            self._process(frame)

    def _process(self, speech: bytes) -> None:
        offset = len(self._utt) * len(speech) // 2  # samples into the utterance: picks this frame's noise
        pcm = np.frombuffer(speech, dtype=np.int16) + _NOISE[(offset + np.arange(len(speech) // 2)) % RATE]
        speech = np.clip(pcm, -32768, 32767).astype(np.int16).tobytes()
        self._utt.append(speech)
        self._d.decoder.process_raw(speech)
        if self._on_partial and len(self._utt) % self._partial_frames == 0:
            hyp = self._d.decoder.hyp()
            text = normalize_phrase(hyp.hypstr) if hyp else ""
            # In grammar mode only prefixes of a hint: a passing decoy is not worth showing.
            if text and text != self._last_partial and (
                    not self._phrases or any((p + " ").startswith(text + " ") for p in self._phrases)):
                self._last_partial = text
                self._on_partial(text)

    def _finish(self) -> None:
        self._d.decoder.end_utt()
        heard, phrases = self._result(), self._phrases
        for _ in range(3):
            # A hint's first words but not its end ("book" of "book a table") is a phrase the caller did not
            # say, yet it can crowd the right one ("good") out of the search: decode again without it.
            rest = tuple(p for p in phrases if not (p + " ").startswith(heard.text + " "))
            if not heard.text or heard.text in phrases or not rest or rest == phrases:
                break
            phrases, heard = rest, self._redecode(rest)
        accepted = bool(heard.text) and (not phrases or heard.text in phrases)
        if not accepted and phrases and self._fallback:
            heard = self._redecode(())
            accepted = bool(heard.text)
        frames, self._utt = len(self._utt), None
        start = self._utt_start * FRAME_SECONDS
        if self._on_speech:
            self._on_speech(False, start + frames * FRAME_SECONDS)
        end = start + (heard.end or frames * FRAME_SECONDS)
        self._on_final(Utterance(heard.text, heard.confidence, start, end, accepted))

    def _result(self) -> _Heard:
        """What the last decode heard. Text is "" when its words do not explain the speech: a short phrase plus
        seconds of "silence" means the grammar swallowed speech it could not match ("bye" for "i would like...").
        """
        decoder = self._d.decoder
        hyp, segments = decoder.hyp(), list(decoder.seg() or [])
        words = [s for s in segments if not s.word.startswith(("<", "[", "+"))]
        if hyp is None or not words:
            return _Heard("", 0.0, None)
        spoken = sum(s.end_frame - s.start_frame + 1 for s in words)
        silent = sum(s.end_frame - s.start_frame + 1 for s in segments if s.word != "</s>") - spoken
        if silent > MAX_UNEXPLAINED_FRAMES + spoken:
            log.debug("sphinx: a hypothesis of %d characters explains %d of %d frames; rejected", len(hyp.hypstr),
                      spoken, spoken + silent)
            return _Heard("", 0.0, None)
        confidence = sum(min(1.0, max(0.0, s.prob)) for s in words) / len(words)
        return _Heard(normalize_phrase(hyp.hypstr), round(confidence, 3), (words[-1].end_frame + 1) / 100)

    def _redecode(self, hints: tuple[str, ...]) -> _Heard:
        """Decode the utterance again with other hints (() for the full LM), from the same normalization."""
        decoder = self._d.decoder
        self._d.activate(hints)
        adapted = decoder.get_cmn()
        decoder.set_cmn(self._cmn)
        decoder.start_utt()
        decoder.process_raw(b"".join(self._utt))
        decoder.end_utt()
        heard = self._result()
        decoder.set_cmn(adapted)  # adapt to this utterance once, not once per pass
        return heard
