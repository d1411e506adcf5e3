"""The audio rules of a provider (gateway/recognizers/pacing.py): how re-sent audio is cut, and the real-time pace."""
from __future__ import annotations

import asyncio

from gateway.recognizers.assemblyai import LIMITS
from gateway.recognizers.pacing import AudioLimits, CallerClock


def test_resent_audio_is_cut_into_messages_assemblyai_takes():
    assert [len(m) for m in LIMITS.resend_messages(bytes(2588), 800)] == [800, 800, 988]  # a 36 ms tail joins
    assert [len(m) for m in LIMITS.resend_messages(bytes(2400), 800)] == [800, 800, 800]
    assert [len(m) for m in LIMITS.resend_messages(bytes(1300), 800)] == [800, 500]  # 62.5 ms: a message of its own
    assert LIMITS.resend_messages(bytes(288), 800) == []  # a lone 36 ms: no word fits in it
    assert [len(m) for m in LIMITS.resend_messages(bytes(16000), 20000)] == [8000, 8000]  # at most 1000 ms each
    assert [len(m) for m in AudioLimits().resend_messages(bytes(1000), 800)] == [800, 200]  # no rules: as it comes


def test_a_paced_stream_never_runs_ahead_of_the_caller_by_more_than_the_burst():
    now = [100.0]
    clock = CallerClock(clock=lambda: now[0])

    async def run():
        pace = clock.pace(0.5)
        reader = asyncio.get_running_loop().create_future()
        assert await pace.take(4000, reader, lambda: False)  # 0.5 s at once: the burst
        sending = asyncio.ensure_future(pace.take(800, reader, lambda: False))
        await asyncio.sleep(0.01)
        assert not sending.done()  # 100 ms more must wait for 100 ms of the caller's audio
        clock.tick(400)
        await asyncio.sleep(0.01)
        assert not sending.done()
        clock.tick(400)
        assert await asyncio.wait_for(sending, 1)
        waiting = asyncio.ensure_future(pace.take(800, reader, lambda: False))
        now[0] += 0.3  # the caller's audio pauses: the clock lets it go, at real time
        assert await asyncio.wait_for(waiting, 1)
        stopped = await asyncio.wait_for(pace.take(80000, reader, lambda: True), 1)
        assert stopped is False  # the call ended: nothing waits for real time any more

    asyncio.run(run())
