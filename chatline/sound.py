"""Audio for the simulator: WAV files and espeak-ng speech turned into Twilio's 8 kHz mu-law, and back to PCM."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from chatline.console import ChatlineError

RATE = 8000  # Twilio Media Streams: 8 kHz mono mu-law
CALLER_VOICE = "en-us"  # the voice the bundled recordings were made with (chatline/audio/make_audio.sh)
BOT_VOICE = "en-us+f3"  # a different voice for the bot, so a recording tells the two apart
_BIAS, _CLIP = 0x84, 32635


def have(tool: str) -> bool:
    """Tell whether a command-line tool (sox, espeak-ng) is installed."""
    return shutil.which(tool) is not None


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """G.711 mu-law encode 16-bit samples (what Twilio streams)."""
    x = (np.asarray(pcm, dtype=np.int32) >> 2) << 2  # 14-bit precision, rounding negatives as CPython's audioop
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law decode to 16-bit samples."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def resample(pcm: np.ndarray, rate: int, target: int = RATE) -> np.ndarray:
    """Resample 16-bit samples; a windowed-sinc low-pass first, so downsampling does not alias."""
    if rate == target:
        return np.asarray(pcm, dtype=np.int16)
    x = np.asarray(pcm, dtype=np.float64)
    if target < rate:
        cutoff = 0.45 * target / rate  # a little below the new Nyquist frequency, in cycles per sample
        n = np.arange(-32, 33)
        taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(len(n))
        x = np.convolve(x, taps / taps.sum(), mode="same")
    positions = np.arange(0, len(x) * target // rate) * (rate / target)
    return np.clip(np.interp(positions, np.arange(len(x)), x), -32768, 32767).astype(np.int16)


def _read_wav_pcm(path: Path) -> tuple[np.ndarray, int]:
    """16-bit mono samples and rate of a WAV file, with Python's `wave` (no sox needed)."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ChatlineError(f"{path} is not a WAV file Python can read ({exc}); install sox to convert it") from exc
    if width != 2 or channels != 1:
        raise ChatlineError(f"{path} is {width * 8}-bit with {channels} channel(s); without sox only 16-bit mono "
                            "WAV can be converted (install sox: apt-get install sox)")
    return np.frombuffer(frames, dtype="<i2"), rate


def _trim(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading and trailing near-silence (espeak-ng pads its speech), as make_audio.sh does with sox."""
    window = max(1, rate // 50)
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 0.005 * 32768)
    if len(loud) == 0:
        return pcm
    return pcm[max(0, loud[0] - window): loud[-1] + window]


def _sox(path: Path) -> bytes:
    """Convert an audio file with sox to headerless 8 kHz mono mu-law on stdout."""
    result = subprocess.run(["sox", str(path), "-r", str(RATE), "-c", "1", "-e", "mu-law", "-t", "raw", "-"],
                            capture_output=True)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"]
        raise ChatlineError(f"sox could not convert {path}: {lines[-1]}")
    return result.stdout


def wav_to_mulaw(path: str | Path) -> bytes:
    """Any WAV as 8 kHz mu-law: sox when installed, else `wave` + numpy for 8 or 16 kHz 16-bit mono."""
    path = Path(path)
    if not path.is_file():
        raise ChatlineError(f"no such WAV file: {path}")
    if have("sox"):
        return _sox(path)
    pcm, rate = _read_wav_pcm(path)
    if rate not in (8000, 16000):
        raise ChatlineError(f"{path} is sampled at {rate} Hz; without sox only 8 or 16 kHz WAV can be converted "
                            "(install sox: apt-get install sox)")
    return mulaw_encode(resample(pcm, rate))


def speak(text: str, voice: str = CALLER_VOICE, words_per_minute: int = 150) -> np.ndarray:
    """Text spoken by espeak-ng, as trimmed 8 kHz 16-bit samples."""
    if not have("espeak-ng"):
        raise ChatlineError("speaking text needs espeak-ng (Debian: apt-get install espeak-ng); use --wav instead")
    with tempfile.TemporaryDirectory(prefix="chatline-espeak-") as tmp:
        wav_path = Path(tmp) / "speech.wav"
        # "--" so a text starting with "-" is spoken, not read as an option.
        result = subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(wav_path),
                                 "--", text], capture_output=True)
        if result.returncode != 0 or not wav_path.exists():
            raise ChatlineError(f"espeak-ng could not say {text!r}: "
                                f"{result.stderr.decode(errors='replace').strip() or 'no output'}")
        pcm, rate = _read_wav_pcm(wav_path)  # espeak-ng always writes 16-bit mono (22050 Hz)
    return _trim(resample(pcm, rate), RATE)


def say_to_mulaw(text: str) -> bytes:
    """What a caller saying `text` puts on the line: espeak-ng speech as 8 kHz mu-law."""
    return mulaw_encode(speak(text))
