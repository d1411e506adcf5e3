"""The shared speech loop as Google's streams use it, and the process's gRPC Speech transports on it."""
from __future__ import annotations

from typing import Any

from grpc import aio

from .speech_loop import (THREAD_NAME, AudioInbox, LoopRecognizer, call_soon, event_loop, forget_on_new_loop,
                          run_on_loop, run_soon)

__all__ = ["THREAD_NAME", "AudioInbox", "LoopRecognizer", "call_soon", "event_loop", "run_on_loop", "run_soon", "transport"]

_transports: dict[str | None, Any] = {}  # touched on the loop thread only
forget_on_new_loop(_transports.clear)


def transport(emulator_host: str | None = None):
    """The process's async Speech transport for this host (call on the loop thread: its channel belongs to the loop).

    One channel multiplexes every call's stream. With an emulator host: plaintext, no credentials, like the other
    *_EMULATOR_HOST variables; otherwise the async client's defaults (credentials, endpoint) as SpeechClient() has.
    """
    found = _transports.get(emulator_host)
    if found is None:
        from google.cloud import speech_v1 as speech
        from google.cloud.speech_v1.services.speech.transports.grpc_asyncio import SpeechGrpcAsyncIOTransport

        if emulator_host:
            found = SpeechGrpcAsyncIOTransport(channel=aio.insecure_channel(emulator_host))
        else:
            found = speech.SpeechAsyncClient().transport
        _transports[emulator_host] = found
    return found
