"""Measure the offline recognizer on the bundled recordings: speed, construction time, accuracy (run by hand).

    /work/venv/bin/python bench/bench_sphinx.py          # the report
    /work/venv/bin/python bench/bench_sphinx.py --cmn    # re-derive sphinx.TELEPHONE_CMN from the recordings
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.audio import FRAME_BYTES, silence  # noqa: E402
from gateway.recognizers import sphinx, sphinx_engine  # noqa: E402

AUDIO = ROOT / "chatline" / "audio"
SAID = {
    "hello": "hello", "good": "good", "bad": "bad", "goodbye": "goodbye", "how_are_you": "how are you",
    "book_a_table": "i would like to book a table", "for_four_people": "for four people",
    "what_can_you_do": "what can you do",
}


def call_audio(*names: str) -> bytes:
    return silence(300) + b"".join((AUDIO / f"{n}.ulaw").read_bytes() + silence(1000) for n in names)


def word_errors(hyp: str, ref: str) -> int:
    h, r = hyp.split(), ref.split()
    row = list(range(len(r) + 1))
    for i in range(1, len(h) + 1):
        prev, row[0] = row[:], i
        for j in range(1, len(r) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (h[i - 1] != r[j - 1]))
    return row[-1]


def recognize(hints, audio: bytes) -> tuple[list[str], float, float]:
    """(texts, wall seconds, CPU seconds) for one call fed in Twilio's 20 ms frames."""
    results = []
    recognizer = sphinx.SphinxRecognizer(hints=hints)
    wall, cpu = time.perf_counter(), time.process_time()
    recognizer.start(lambda t: results.append(t.text))
    for i in range(0, len(audio), FRAME_BYTES):
        recognizer.feed(audio[i:i + FRAME_BYTES])
    recognizer.drain(timeout=120)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    recognizer.close()
    return results, wall, cpu


def construction() -> None:
    sphinx_engine.POOL.idle.clear()
    for label in ("cold (loads the acoustic model)", "warm (pooled decoder)"):
        started = time.perf_counter()
        sphinx.SphinxRecognizer(hints=list(SAID.values())).close()
        print(f"  construction, {label}: {1000 * (time.perf_counter() - started):.1f} ms")
    engine = sphinx_engine.SphinxEngine((), on_final=lambda u: None)
    started = time.perf_counter()
    engine.feed(call_audio("hello"))  # the first LM utterance adds the n-gram search to the decoder
    print(f"  first full-LM utterance on a fresh decoder incl. loading the LM: {time.perf_counter() - started:.2f} s")
    engine.close()


def inline_cost(hints) -> None:
    """What decoding inside the websocket thread would cost per 20 ms frame."""
    costs = []
    engine = sphinx_engine.SphinxEngine(hints, on_final=lambda u: None)
    audio = call_audio(*SAID)
    for i in range(0, len(audio), FRAME_BYTES):
        started = time.perf_counter()
        engine.feed(audio[i:i + FRAME_BYTES])
        costs.append(1000 * (time.perf_counter() - started))
    engine.close()
    print(f"  feed() per 20 ms frame: mean {statistics.mean(costs):.2f} ms, p99 "
          f"{sorted(costs)[int(len(costs) * 0.99)]:.1f} ms, max {max(costs):.1f} ms")


def report() -> None:
    construction()
    audio = call_audio(*SAID)
    seconds = len(audio) / 8000
    for label, hints in (("grammar (8 classic phrases)", list(SAID.values())), ("full language model", [])):
        print(f"{label}:")
        recognize(hints, call_audio("hello"))  # warm the pool and the LM search
        texts, wall, cpu = recognize(hints, audio)
        print(f"  one call, {seconds:.1f} s of audio: RTF {cpu / seconds:.3f} (CPU), {wall / seconds:.3f} (wall); "
              f"{60 * cpu / seconds:.1f} CPU s per call-minute; heard {texts}")
        # A call needs RTF cores to be decoded at real time, so one core keeps up with 1 / RTF calls.
        print(f"  calls per core at real time: {seconds / cpu:.0f} (recognition only; decoding is CPU-bound)")
        inline_cost(hints)
        exact = errors = words = 0
        for name, said in SAID.items():
            heard = " ".join(recognize(hints, call_audio(name))[0])
            exact += heard == said
            errors += word_errors(heard, said)
            words += len(said.split())
            if heard != said:
                print(f"    {name}: heard {heard!r}")
        print(f"  accuracy, one fresh call per recording: {exact}/{len(SAID)} exact, WER {errors / words:.0%}")
    grammars = {"classic": list(SAID.values()), "good/bad": ["good", "bad"], "yes/no": ["yes", "no"],
                "hello": ["hello"], "goodbye/bye": ["goodbye", "bye"], "hello/how are you": ["hello", "how are you"]}
    accepted = total = 0
    for label, hints in grammars.items():
        for name in [n for n in SAID if SAID[n] not in hints] + ["weather", "special_characters"]:
            heard = recognize(hints, call_audio(name))[0]
            total, accepted = total + 1, accepted + bool(heard)
            if heard:
                print(f"    out of grammar {label}: {name} heard as {heard}")
    print(f"out-of-grammar utterances accepted: {accepted}/{total}")


def calibrate_cmn() -> None:
    """Print the cepstral mean the engine settles on over three passes of the recordings (its own fixed point)."""
    engine = sphinx_engine.SphinxEngine(list(SAID.values()), on_final=lambda u: None)
    for _ in range(3):
        engine.feed(call_audio(*SAID))
    print(engine.cmn)
    engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cmn", action="store_true", help="re-derive the telephone CMN prior")
    calibrate_cmn() if parser.parse_args().cmn else report()
