"""Whether the caller has finished their turn: from their words, or with the smart-turn model on their audio."""
from __future__ import annotations

import importlib.util
import logging
import re
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from ..audio import FRAME_BYTES, mulaw_to_pcm16_16k
from .playback import is_voiced

log = logging.getLogger(__name__)

FINISHED = 0.5  # a probability at or above this is a finished turn
MODEL_SECONDS = 8  # smart-turn looks at the last 8 s of the caller's audio (16 kHz)
AUDIO_TAIL_BYTES = MODEL_SECONDS * 8000  # what to keep of the caller's mu-law audio for a decision
# The model takes silence as the end of a turn: it is given the caller's audio up to their last speech and this much
# after it (as a VAD would hand it over), not the half second or more a recognizer's final comes after.
KEEP_SILENCE_BYTES = 200 * 8

# Words a finished sentence does not end on (articles, prepositions, conjunctions, possessives, fillers, verbs
# waiting for their object), per language: "I'd like to book a table for" is not a turn yet.
_OPEN_ENDINGS = {
    "en": "a an the for to of with and or but so because if that at in on from by my your our their his her its "
          "um uh er erm like want need would could is are was were be have has i'd i'm i'll i we you it's "
          "about around into than then which who when where what some this these those",
    "es": "un una unos unas el la los las de del para por con y o pero porque que en a al mi mis tu su sus "
          "eh este esta quiero quisiera necesito es son muy",
    "de": "ein eine einen einem einer der die das den dem des für zu zum zur mit und oder aber weil dass in im "
          "an am auf von vom bei mein meine meinen ihr ihre äh ähm ich möchte will brauche ist sind",
    "fr": "un une des le la les de du pour avec et ou mais parce que qu en à au aux mon ma mes ton ta votre "
          "notre leur euh je voudrais veux besoin est sont très",
}
_OPEN = {language: frozenset(words.split()) for language, words in _OPEN_ENDINGS.items()}
# Two last words that announce what comes next ("the reservation is under the name ... Garcia"): a name, a number.
_OPEN_PAIRS = {"en": frozenset({"the name", "name is", "named", "called", "number is", "address is"})}
_TRAILING = re.compile(r"(\.\.\.|…|,|-|–)\s*$")
_WORD = re.compile(r"[\w'’]+", re.UNICODE)


class EndOfTurn(Protocol):
    """One small interface for every detector: the probability that the caller has finished."""

    def finished(self, text: str, audio_tail: bytes | None = None, language: str = "en-US") -> float:
        """`text`: the turn's words so far; `audio_tail`: the caller's last mu-law 8 kHz audio (up to 8 s)."""


class WordsEndOfTurn:
    """A sentence is unfinished when it ends on a word no sentence ends on, or on a comma or an ellipsis."""

    def finished(self, text: str, audio_tail: bytes | None = None, language: str = "en-US") -> float:
        if _TRAILING.search(text):
            return 0.2
        words = _WORD.findall(text.lower().replace("’", "'"))
        if not words:
            return 1.0  # nothing said: nothing to wait for
        open_words = _OPEN.get(language[:2].lower(), _OPEN["en"])
        pairs = _OPEN_PAIRS.get(language[:2].lower(), frozenset())
        if words[-1] in open_words or " ".join(words[-2:]) in pairs or words[-1] in pairs:
            return 0.1
        return 0.9


class SmartTurn:
    """Pipecat's smart-turn v3 (BSD-2, an 8.7 MB ONNX model shipped inside the pipecat-ai wheel) on the caller's
    last 8 s of audio, with onnxruntime on one CPU thread. Its words are not used: it hears the intonation."""

    def __init__(self, model_path: Path, features_path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1  # a call's decision must not take the box
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(str(model_path), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        self._features = _load_module("chatline_smart_turn_features", features_path).compute_whisper_log_mel_features
        self._lock = threading.Lock()  # one session, many calls' threads: decisions take turns (~tens of ms)

    def finished(self, text: str, audio_tail: bytes | None = None, language: str = "en-US") -> float:
        if not audio_tail:
            return WordsEndOfTurn().finished(text, None, language)
        pcm, _ = mulaw_to_pcm16_16k(_trim_silence(audio_tail)[-AUDIO_TAIL_BYTES:])
        audio = pcm.astype(np.float32) / 32768.0
        audio = np.pad(audio, (MODEL_SECONDS * 16000 - len(audio), 0)) if len(audio) < MODEL_SECONDS * 16000 else audio
        features = self._features(audio[-MODEL_SECONDS * 16000:], do_normalize=True)[np.newaxis]
        with self._lock:
            outputs = self._session.run(None, {"input_features": features.astype(np.float32)})
        return float(np.asarray(outputs[0]).reshape(-1)[0])


def _trim_silence(audio: bytes) -> bytes:
    """The audio up to its last speech frame, and KEEP_SILENCE_BYTES after it."""
    end = len(audio) - len(audio) % FRAME_BYTES
    while end > 0 and not is_voiced(audio[end - FRAME_BYTES:end]):
        end -= FRAME_BYTES
    return audio[:end + KEEP_SILENCE_BYTES] if end else audio


def _load_module(name: str, path: Path):
    """Load one file of the pipecat-ai package on its own: its numpy-only Whisper feature extraction needs none of
    pipecat's own start-up (loguru, pipelines), so the gateway needs onnxruntime and the wheel, not its 30 deps."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def smart_turn_files() -> tuple[Path, Path] | None:
    """Where the installed pipecat-ai wheel keeps the smart-turn model and its feature extraction, if it is there."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "audio" / "turn" / "smart_turn"
    model, features = folder / "data" / "smart-turn-v3.2-cpu.onnx", folder / "_whisper_features.py"
    return (model, features) if model.is_file() and features.is_file() else None


DETECTORS = ("words", "smart-turn")


def detector(kind: str = "words") -> EndOfTurn:
    """The end-of-turn detector TURN_DETECTOR names: "words" (the default: microseconds a decision), or "smart-turn"
    (the model, ~100 ms of CPU a decision; needs the `turn` extra: pipecat-ai and onnxruntime), else words."""
    if kind != "smart-turn":
        return WordsEndOfTurn()
    files = smart_turn_files()
    if files is None or importlib.util.find_spec("onnxruntime") is None:
        log.warning("TURN_DETECTOR=smart-turn but pipecat-ai and onnxruntime are not installed; deciding on words")
        return WordsEndOfTurn()
    try:
        return SmartTurn(*files)
    except (OSError, RuntimeError, ImportError, AttributeError) as exc:  # a broken install: say so, go on
        log.warning("the smart-turn model could not be loaded (%s); ends of turn are decided on words", exc)
        return WordsEndOfTurn()
