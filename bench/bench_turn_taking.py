"""Turn-taking figures over the recorded utterances (chatline/audio/turns.tsv), for each recognizer's stand-in (run by
hand): how many were answered too early, and end of speech -> decision p50/p95, for "every final is a turn" (today)
and for the end-of-turn detector joining finals (TurnJoiner).

    .venv/bin/python bench/bench_turn_taking.py                      # every recognizer, words detector
    .venv/bin/python bench/bench_turn_taking.py --providers sphinx --smart-turn --wait 2.0

Each utterance streams in real time (20 ms frames) through the gateway's own recognizer client into the provider's
stand-in, then 3 s of silence; every result is timed. The two policies are then replayed over the same results, so
they are compared on identical recognizer behaviour. The decision is when the turn would go to the chatbot; the call
update follows it by the chatbot's time (measured end to end by bench_calls once the gateway is wired).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.audio import silence  # noqa: E402
from gateway.dialogue.end_of_turn import WordsEndOfTurn, detector  # noqa: E402
from gateway.dialogue.turn_joiner import TurnJoiner  # noqa: E402

AUDIO = ROOT / "chatline" / "audio"
FRAME_SECONDS = 0.02
TAIL_SECONDS = 3.0  # silence streamed after each utterance: room for the last final and the longest wait


@dataclass
class Utterance:
    name: str
    text: str
    paused: bool  # said with a pause in the middle: answering before its end is answering too early
    audio: bytes


@dataclass
class Timeline:
    utterance: Utterance
    t0: float = 0.0  # monotonic time of the first frame
    results: list = field(default_factory=list)  # (monotonic time, Transcript)

    @property
    def speech_end(self) -> float:
        return self.t0 + len(self.utterance.audio) / 8000


def utterances() -> list[Utterance]:
    rows = [r for r in csv.reader((AUDIO / "turns.tsv").open(), delimiter="\t") if r and not r[0].startswith("#")]
    return [Utterance(name, f"{before} {after}".strip(), bool(after), (AUDIO / "turns" / f"{name}.ulaw").read_bytes())
            for name, before, _, after in rows]


def hints_for() -> list[str]:
    """Every part said (up to a pause, after it), as the recognizers' phrase hints (the offline recognizer's grammar):
    a caller's words, not the whole sentence they will have said once they go on."""
    rows = [r for r in csv.reader((AUDIO / "turns.tsv").open(), delimiter="\t") if r and not r[0].startswith("#")]
    return sorted({part for row in rows for part in (row[1], row[3]) if part})


@contextlib.contextmanager
def provider(name: str, hints: list[str]):
    """The gateway's recognizer factory for `name`, pointed at its stand-in (started here)."""
    if name == "sphinx":
        from gateway.recognizers.sphinx import SphinxRecognizer

        yield lambda: SphinxRecognizer(hints=hints)
    elif name == "google":
        from gateway.recognizers.google import GoogleRecognizer
        from standins.speech import SpeechStandIn

        with SpeechStandIn() as standin:
            yield lambda: GoogleRecognizer(hints=hints, emulator_host=standin.address)
    else:
        from gateway.recognizers.websocket_stream import WebSocketRecognizer

        if name == "deepgram":
            from gateway.recognizers.deepgram import DeepgramDialect as Dialect
            from standins.deepgram import DeepgramStandIn as StandIn
        else:
            from gateway.recognizers.assemblyai import AssemblyAIDialect as Dialect
            from standins.assemblyai import AssemblyAIStandIn as StandIn
        with StandIn() as standin:
            yield lambda: WebSocketRecognizer(Dialect(standin.api_key, standin.url), hints=hints)


def stream(make, utterance: Utterance) -> Timeline:
    """Stream one utterance in real time through a new recognizer; every result with its arrival time."""
    timeline, lock = Timeline(utterance), threading.Lock()

    def heard(transcript) -> None:
        with lock:
            timeline.results.append((time.monotonic(), transcript))

    recognizer = make()
    recognizer.start(heard)
    audio = utterance.audio + b"\xff" * (-len(utterance.audio) % 160) + silence(int(TAIL_SECONDS * 1000))
    timeline.t0 = time.monotonic()
    for n in range(len(audio) // 160):
        time.sleep(max(0.0, timeline.t0 + n * FRAME_SECONDS - time.monotonic()))
        recognizer.feed(audio[n * 160:(n + 1) * 160])
    recognizer.close()
    return timeline


def every_final(timeline: Timeline) -> tuple[float, str] | None:
    """Today: the first final with words is the turn."""
    return next(((t, r.text) for t, r in timeline.results if r.is_final and r.text.strip()), None)


def joined(timeline: Timeline, end_of_turn, wait: float) -> tuple[float, str] | None:
    """The detector: finals of an unfinished sentence wait (held while the caller speaks on) and are joined."""
    turns = TurnJoiner(end_of_turn, wait)
    audio = timeline.utterance.audio
    for t, result in sorted(timeline.results, key=lambda item: item[0]):
        if turns.deadline is not None and t >= turns.deadline:
            return turns.deadline, turns.due(turns.deadline)
        if result.is_final:
            fed = int((t - timeline.t0) * 8000)  # the caller's audio up to this final (then the tail's silence)
            turn = turns.final(result.text, t, audio[:fed] + b"\xff" * max(0, fed - len(audio)), result.confidence)
            if turn:
                return t, turn
        elif result.text or result.speech_started:
            turns.speech(t)
    return (turns.deadline, turns.flush()) if turns.waiting else None


def report(name: str, timelines: list[Timeline], policies: dict) -> None:
    paused = sum(tl.utterance.paused for tl in timelines)
    for label, decide in policies.items():
        early, delays, unanswered = [], [], []
        for tl in timelines:
            decision = decide(tl)
            if decision is None:
                unanswered.append(tl.utterance.name)
            elif decision[0] < tl.speech_end - 0.05:
                early.append(tl.utterance.name)
            else:
                delays.append((decision[0] - tl.speech_end) * 1000)
        p50 = statistics.median(delays) if delays else float("nan")
        p95 = sorted(delays)[max(0, int(len(delays) * 0.95) - 1)] if delays else float("nan")
        print(f"{name:10s} {label:22s} early {len(early):2d}/{len(timelines)} (paused: {paused})  "
              f"end of speech -> decision p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  unanswered {len(unanswered)}")
        if early:
            print(f"{'':10s} {'':22s} answered early: {', '.join(early)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="google,deepgram,assemblyai,sphinx")
    parser.add_argument("--wait", type=float, default=2.0, help="TURN_MAX_WAIT_SECONDS")
    parser.add_argument("--concurrency", type=int, default=8, help="utterances streamed at once")
    parser.add_argument("--smart-turn", action="store_true", help="also replay with the smart-turn model")
    parser.add_argument("--show", action="store_true", help="print every utterance's results")
    args = parser.parse_args()
    said = utterances()
    policies = {"every final (today)": every_final,
                f"words, wait {args.wait:g}s": lambda tl: joined(tl, WordsEndOfTurn(), args.wait)}
    if args.smart_turn:
        model = detector("smart-turn")
        policies[f"smart-turn, wait {args.wait:g}s"] = lambda tl: joined(tl, model, args.wait)
    print(f"{len(said)} utterances, {sum(u.paused for u in said)} with a pause in the middle")
    for name in args.providers.split(","):
        with provider(name, hints_for()) as make, ThreadPoolExecutor(args.concurrency) as pool:
            timelines = list(pool.map(lambda u: stream(make, u), said))
        if args.show:
            for tl in timelines:
                finals = [f"{t - tl.speech_end:+.2f}s {'' if r.is_final else '~'}{r.text or '(speech)'!r}" + (f" ({r.confidence:.2f})" if r.is_final else "")
                          for t, r in tl.results if r.is_final or r.speech_started]
                print(f"  {tl.utterance.name:24s} {'; '.join(finals)}")
        report(name, timelines, policies)


if __name__ == "__main__":
    main()
