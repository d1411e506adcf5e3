"""The benchmark's outside world in one process: Twilio's REST Calls resource and a tiny fast chatbot (aiohttp)."""
from __future__ import annotations

import asyncio
import re
import resource
import time

from aiohttp import web

TAG = re.compile(r"#\d+\.\d+")  # the Speech stand-in's unique suffix on every final, echoed by the chatbot
SAID_TAG = re.compile(r"You said [^<]*?#?(\d+\.\d+)")  # ...as said: the phone-fit text drops the decorative "#"


def cpu_seconds() -> float:
    """CPU this process has used, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_app(arrivals: list[tuple[str, str, float]]) -> web.Application:
    """REST `POST .../Calls/{sid}.json` records (call, turn tag, arrival time); `POST /message` echoes the message."""

    async def update_call(request: web.Request) -> web.Response:
        arrived = time.time()
        form = await request.post()
        call_sid = request.match_info["call_sid"]
        tag = SAID_TAG.search(str(form.get("Twiml", "")))
        arrivals.append((call_sid, "#" + tag.group(1) if tag else "", arrived))
        return web.json_response({  # the fields twilio's CallInstance reads; the rest default to None
            "sid": call_sid, "account_sid": request.match_info["account_sid"], "status": "in-progress",
            "direction": "inbound", "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{request.match_info['account_sid']}/Calls/{call_sid}.json"})

    async def chatbot(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"text": f"You said {body.get('message', '')}", "action": None, "hints": []})

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json", update_call)
    app.router.add_post("/message", chatbot)
    return app


def serve(port: int, ready, conn) -> None:
    """Process entry: serve on `port` until `conn` says stop, then send back the arrivals and this process's CPU."""
    arrivals: list[tuple[str, str, float]] = []

    async def main() -> None:
        runner = web.AppRunner(make_app(arrivals), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # the "stop" message
        await runner.cleanup()

    asyncio.run(main())
    conn.send({"arrivals": arrivals, "cpu": cpu_seconds()})


def speech(ready, script: list[str], max_workers: int, provider: str, conn) -> None:
    """Process entry: the provider's stand-in in scripted mode; on "stop" send back every final and this process's
    CPU. Google's answers with its address (SPEECH_EMULATOR_HOST), Deepgram's and AssemblyAI's with their URL."""
    if provider == "google":
        from standins.speech import SpeechStandIn

        standin = SpeechStandIn(scripted=script, tag_finals=True, max_workers=max_workers, idle_timeout=30.0)
    else:
        from standins.assemblyai import AssemblyAIStandIn
        from standins.deepgram import DeepgramStandIn

        make = DeepgramStandIn if provider == "deepgram" else AssemblyAIStandIn
        standin = make(scripted=script, tag_finals=True, idle_timeout=30.0)
    with standin:
        conn.send(standin.address if provider == "google" else (standin.url, standin.api_key))
        ready.set()
        conn.recv()
        records = standin.streams
        finals = [(f.text, f.sent_at) for record in records for f in record.finals] if provider == "google" else [
            pair for record in records for pair in zip(record.finals, record.final_times)]
        streams = len(records)
        requests = sum(len(record.chunk_sizes) for record in records)  # audio messages, to compare batching
        audio = sum(record.audio_seconds for record in records)
    conn.send({"finals": finals, "streams": streams, "requests": requests, "audio_seconds": audio,
               "cpu": cpu_seconds()})
