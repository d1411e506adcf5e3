"""gateway/audio.py: G.711 mu-law decoding and streaming-safe 8 -> 16 kHz upsampling."""
from __future__ import annotations

import numpy as np
import pytest

from gateway.audio import FRAME_BYTES, MULAW_SILENCE, mulaw_to_pcm16, mulaw_to_pcm16_16k, silence, upsample_2x


def test_decoding_table_known_values():
    assert mulaw_to_pcm16(bytes([0xFF, 0x00, 0x80, 0x7F])).tolist() == [0, -32124, 32124, 0]


def test_decoding_is_monotonic_within_each_sign():
    table = mulaw_to_pcm16(bytes(range(256))).astype(int)
    assert np.all(np.diff(table[:128]) > 0)  # 0x00 (most negative) .. 0x7F (-0)
    assert np.all(np.diff(table[128:]) < 0)  # 0x80 (most positive) .. 0xFF (+0)


def test_silence_is_mulaw_zero_at_8khz():
    assert silence(20) == bytes([MULAW_SILENCE]) * FRAME_BYTES
    assert len(silence(1000)) == 8000
    assert not mulaw_to_pcm16(silence(100)).any()


def in_chunks(convert, signal, size):
    """Run a streaming converter over `signal` in pieces of `size`, carrying its filter tail; join the output."""
    pieces, tail = [], None
    for start in range(0, len(signal), size):
        out, tail = convert(signal[start:start + size], tail)
        pieces.append(out)
    return np.concatenate(pieces)


@pytest.mark.parametrize("chunk", [1, 7, 160, 333])
def test_chunked_upsampling_equals_whole_signal(chunk):
    pcm = np.random.default_rng(chunk).integers(-20000, 20000, 4000).astype(np.int16)
    whole, _ = upsample_2x(pcm)
    assert np.array_equal(in_chunks(upsample_2x, pcm, chunk), whole)
    assert len(whole) == 2 * len(pcm)


def test_chunked_mulaw_decoding_equals_whole_signal():
    data = bytes(np.random.default_rng(1).integers(0, 256, 3200, dtype=np.uint8))
    whole, _ = mulaw_to_pcm16_16k(data)
    assert np.array_equal(in_chunks(mulaw_to_pcm16_16k, data, FRAME_BYTES), whole)


def _spectrum(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    windowed = samples.astype(float) * np.hanning(len(samples))
    return np.fft.rfftfreq(len(samples), 1 / rate), np.abs(np.fft.rfft(windowed))


def test_1khz_tone_keeps_its_frequency_and_loses_its_image():
    t = np.arange(8000) / 8000
    tone = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    up, _ = upsample_2x(tone)
    freqs, mags = _spectrum(up[200:], 16000)  # skip the filter's start-up
    assert abs(freqs[np.argmax(mags)] - 1000) < 5
    # Zero-stuffing mirrors the tone to 7 kHz; the half-band filter must remove it.
    image = mags[np.abs(freqs - 7000) < 20].max()
    assert 20 * np.log10(mags.max() / image) > 40
    assert np.abs(up[200:]).max() == pytest.approx(10000, rel=0.05)  # unity gain in the pass band
