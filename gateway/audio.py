"""G.711 mu-law decoding and 8 kHz -> 16 kHz resampling, in numpy (audioop is gone in Python 3.13)."""
from __future__ import annotations

import numpy as np

MULAW_SILENCE = 0xFF  # the mu-law byte for zero amplitude
SAMPLE_RATE = 8000
FRAME_BYTES = 160  # one 20 ms Twilio media frame at 8 kHz


def _mulaw_table() -> np.ndarray:
    """Return the 256-entry table from mu-law byte to linear 16-bit sample (ITU-T G.711)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_MULAW_TO_LINEAR = _mulaw_table()

# A short half-band low-pass (windowed sinc) used after zero-stuffing to double the rate;
# 31 taps keep the 3.4 kHz telephone band flat while removing the mirror image above 4 kHz.
_TAPS = 31
_n = np.arange(_TAPS) - (_TAPS - 1) / 2
_HALFBAND = np.sinc(_n / 2) * np.hamming(_TAPS)
_HALFBAND = (_HALFBAND / _HALFBAND.sum() * 2).astype(np.float32)


def mulaw_to_pcm16(data: bytes) -> np.ndarray:
    """Decode mu-law bytes to int16 samples at the same rate."""
    return _MULAW_TO_LINEAR[np.frombuffer(data, dtype=np.uint8)]


def upsample_2x(pcm: np.ndarray, tail: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Double the sample rate of int16 `pcm`; returns (samples, tail) where tail carries filter state to the next call.

    Streaming-safe: feeding chunks one after another with the returned tail gives the same
    output as upsampling the whole signal at once (delayed by the filter's group delay).
    """
    stuffed = np.zeros(len(pcm) * 2, dtype=np.float32)
    stuffed[::2] = pcm
    history = tail if tail is not None else np.zeros(_TAPS - 1, dtype=np.float32)
    padded = np.concatenate([history, stuffed])
    out = np.convolve(padded, _HALFBAND, mode="valid")
    clipped = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    return clipped, padded[-(_TAPS - 1):]


def mulaw_to_pcm16_16k(data: bytes, tail: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode 8 kHz mu-law and upsample to 16 kHz int16; see `upsample_2x` for `tail`."""
    return upsample_2x(mulaw_to_pcm16(data), tail)


def silence(milliseconds: int) -> bytes:
    """Return that many milliseconds of mu-law silence at 8 kHz."""
    return bytes([MULAW_SILENCE]) * (SAMPLE_RATE * milliseconds // 1000)
