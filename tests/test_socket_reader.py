"""gateway/twilio/socket_reader.py on real socket pairs: one thread reads every stream, and each ends for its reason."""
from __future__ import annotations

import threading
import time

from gateway.twilio.socket_reader import Ended, SocketReader
from tests.test_websocket import TEXT, Peer, close_frame, frame


class Batches:
    """A stream's handler as the stream view is one: records each read's messages and the thread that took them."""

    def __init__(self, stop_at: str | None = None, fail_at: str | None = None):
        self.reads: list[list] = []
        self.threads: set[str] = set()
        self.stop_at, self.fail_at = stop_at, fail_at
        self.finished = False

    def take(self, messages: list) -> bool:
        self.reads.append(messages)
        self.threads.add(threading.current_thread().name)
        if self.fail_at in messages:
            raise RuntimeError("a bug in one stream's handling")
        return self.stop_at not in messages


def reading(reader: SocketReader, peer: Peer, batches: Batches) -> dict:
    """Start `read` on its own thread, as a stream's request thread calls it; the dict gets its result."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("ended", reader.read(peer.ws, batches)))
    thread.start()
    result["thread"] = thread
    return result


def wait_until(check, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_every_stream_is_read_by_one_thread_in_batches_until_its_handler_is_done():
    reader = SocketReader(interval=0.05)
    peers = [Peer() for _ in range(3)]
    handlers = [Batches(stop_at="stop") for _ in peers]
    results = [reading(reader, peer, batches) for peer, batches in zip(peers, handlers)]
    for i, peer in enumerate(peers):
        peer.sock.sendall(b"".join(frame(TEXT, f"{i}-{n}".encode()) for n in range(5)))
    wait_until(lambda: all(sum(map(len, h.reads)) == 5 for h in handlers))
    for i, batches in enumerate(handlers):
        assert [m for read in batches.reads for m in read] == [f"{i}-{n}" for n in range(5)]
        assert batches.threads == {"stream-reader"}
    assert reader.streams == 3
    for peer in peers:
        peer.sock.sendall(frame(TEXT, b"stop"))
    for result in results:
        result["thread"].join(3)
        assert result["ended"] is Ended.DONE
    assert reader.streams == 0


def test_a_peer_that_closes_ends_its_stream_only():
    reader = SocketReader(interval=0.02)
    closing, staying = Peer(), Peer()
    closed_handler, staying_handler = Batches(), Batches(stop_at="stop")
    closed, stayed = reading(reader, closing, closed_handler), reading(reader, staying, staying_handler)
    closing.sock.sendall(close_frame(1000))
    closed["thread"].join(3)
    assert closed["ended"] is Ended.CLOSED
    staying.sock.sendall(frame(TEXT, b"still here"))
    wait_until(lambda: staying_handler.reads == [["still here"]])
    staying.sock.close()
    stayed["thread"].join(3)
    assert stayed["ended"] is Ended.CLOSED


def test_silence_ends_a_stream_and_so_does_its_handler_finishing():
    reader = SocketReader(interval=0.02, silence_seconds=0.2)
    quiet, left = Peer(), Peer()
    left_handler = Batches()
    quiet_result, left_result = reading(reader, quiet, Batches()), reading(reader, left, left_handler)
    left_handler.finished = True  # the call was handed on: nothing on the socket says so
    left_result["thread"].join(3)
    assert left_result["ended"] is Ended.DONE
    quiet_result["thread"].join(3)
    assert quiet_result["ended"] is Ended.SILENT


def test_a_handler_that_fails_ends_its_own_stream_and_the_others_are_read_on():
    reader = SocketReader(interval=0.02)
    bad, good = Peer(), Peer()
    good_handler = Batches(stop_at="stop")
    bad_result = reading(reader, bad, Batches(fail_at="boom"))
    good_result = reading(reader, good, good_handler)
    bad.sock.sendall(frame(TEXT, b"boom"))
    bad_result["thread"].join(3)
    assert bad_result["ended"] is Ended.DONE
    good.sock.sendall(frame(TEXT, b"after") + frame(TEXT, b"stop"))
    good_result["thread"].join(3)
    assert good_result["ended"] is Ended.DONE
    assert [m for read in good_handler.reads for m in read] == ["after", "stop"]
