"""Media ingest alone: server CPU per stream, Chatline against Twilio's Media Streams Node sample, in one run.

    git clone --depth 1 https://github.com/twilio/media-streams /tmp/ms    # outside this repository
    cd /tmp/ms/node/realtime-transcriptions && npm install && npm install @google-cloud/speech@latest
    PYTHONPATH=. python -m bench.bench_ingest --node-sample /tmp/ms/node/realtime-transcriptions --streams 50 100

The sample is `node/realtime-transcriptions` of github.com/twilio/media-streams, run as it is (`node server.js`)
with a preload that only configures it: its hard-coded port 8080 becomes a free loopback port, and its
`new SpeechClient()` gets the Google stand-in's address and plaintext gRPC credentials (so no Google login).
Chatline is the Procfile's `web:` process with its defaults (signed /voice, then the stream). For each stream
count both servers get the same streams of the same real speech (bench_load's 20 ms mu-law frames, in real time),
one server after the other, each with a fresh Google stand-in (scripted mode). The stand-in hears the audio but
answers nothing unless --answers, so neither server runs turns: ingest alone. CPU is read from /proc for the
server's process only (the node process; the gunicorn worker), in the steady state with every stream open.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_load, bench_services  # noqa: E402
from bench.bench_calls import (ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, loadavg, proc_cpu, start_process,  # noqa: E402
                               workers_of)
from chatline.procfile import ProcfileProcess, free_port, wait_for_port  # noqa: E402

UTTERANCES = ["hello", "book_a_table", "goodbye"]
SCRIPT = ["hello", "i would like to book a table", "goodbye"]
# Configuration only, no change to the sample's logic: its server listens on a constant 8080 (moved to BENCH_PORT,
# on loopback), and its module-level `new Speech.SpeechClient()` takes Google's endpoint and TLS by default. The
# grpc-js is google-gax's own copy, so the credentials object is one that gax's channel accepts.
PRELOAD = """
const http = require('http');
const here = {paths: [process.cwd()]};
const speechPath = require.resolve('@google-cloud/speech', here);
const speech = require(speechPath);
const grpc = require(require.resolve('@grpc/grpc-js', {paths: [require.resolve('google-gax', {paths: [speechPath]})]}));
const [host, port] = process.env.BENCH_SPEECH.split(':');
const Client = speech.SpeechClient;
speech.SpeechClient = class extends Client {
  constructor(opts) {
    super({apiEndpoint: host, port: Number(port), sslCreds: grpc.credentials.createInsecure(), ...opts});
  }
};
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (p, ...rest) {
  const moved = p === 8080 ? [Number(process.env.BENCH_PORT), '127.0.0.1'] : [p];
  return listen.call(this, ...moved, ...rest);
};
"""


def standin(ready, max_workers: int, answers: bool, conn) -> None:
    """Process entry: bench_services' Google stand-in; unless `answers`, it hears every stream and never answers."""
    if not answers:
        from standins import speech_stream

        class Silent(speech_stream.ScriptedEngine):
            def __init__(self, script, **callbacks) -> None:  # no interims, speech events or finals: no turns
                super().__init__(script, on_final=lambda utterance: None)

        speech_stream.ScriptedEngine = Silent
    bench_services.speech(ready, SCRIPT, max_workers, "google", conn)


def start_node(sample: Path, speech: str, logs: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """The sample's server, `node server.js` in its folder (its .env and node_modules), with the preload."""
    preload, port = logs / "preload.js", free_port()
    preload.write_text(PRELOAD)
    with open(log, "ab") as out:
        node = subprocess.Popen(["node", "-r", str(preload), "server.js"], cwd=sample,
                                env={**os.environ, "BENCH_PORT": str(port), "BENCH_SPEECH": speech},
                                stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, node, 30)
    return node, port


def start_gateway(speech: str, services_url: str, logs: Path, log: Path) -> ProcfileProcess:
    """Chatline's `web:` process as bench_calls runs it: the product's defaults, its history in the logs folder."""
    for name in ("GATEWAY_THREADS", "MAX_CONCURRENT_STREAMS", "GATEWAY_WORKERS", "REDIS_URL"):
        os.environ.pop(name, None)  # the defaults, even if this shell has other settings
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": PUBLIC_URL,
           "CHATBOT_URL": services_url + "/message", "TWILIO_API_URL": services_url, "STT_PROVIDER": "google",
           "SPEECH_EMULATOR_HOST": speech, "HINTS": "hello, book a table, goodbye", "MONITOR_PASSWORD": "bench",
           "DATABASE_URL": f"sqlite:///{logs}/history.db"}
    gateway = ProcfileProcess("web", log_path=log, bin_dir=str(Path(sys.executable).parent), env=env)
    gateway.start()
    return gateway


def measure(system: str, n: int, args, logs: Path) -> dict:
    """One server, n streams: start it with a fresh stand-in, warm it with one stream, play the streams, stop."""
    ctx = multiprocessing.get_context("spawn")
    speech_ready = ctx.Event()
    speech, speech_conn = start_process(standin, speech_ready, 2 * n + 32, args.answers)
    address = speech_conn.recv()
    speech_ready.wait(30)
    services_ready, services_port = ctx.Event(), free_port()
    services, services_conn = start_process(bench_services.serve, services_port, services_ready)
    services_ready.wait(30)
    opts = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "public_url": PUBLIC_URL,
            "utterances": UTTERANCES, "gap": args.gap, "seconds": args.seconds}
    server = gateway = None
    stopped, log = False, logs / f"{system.replace(' ', '-')}-{n}.log"
    try:
        if system == "node sample":
            server, port = start_node(args.node_sample, address, logs, log)
            pids = [server.pid]
            opts["stream_url"] = f"ws://127.0.0.1:{port}/"  # the sample takes any path, and no webhook comes first
        else:
            gateway = start_gateway(address, f"http://127.0.0.1:{services_port}", logs, log)
            port, pids = gateway.port, workers_of(gateway.process.pid)
        opts.update(local_url=f"http://127.0.0.1:{port}", local_addr=("127.0.0.1", port))
        result = play(n, args, opts, pids)
        speech_conn.send("stop")
        services_conn.send("stop")
        result["heard"], _ = speech_conn.recv(), services_conn.recv()
        stopped = True
        # the sample only logs its gRPC errors (console.error) and goes on, so its log is read for them too
        result["logged"] = [line for line in log.read_text(errors="replace").splitlines()
                            if "Error" in line or " ERROR " in line or "Traceback" in line]
        return result
    finally:
        if gateway is not None:
            gateway.stop()
        if server is not None:
            server.terminate()
            server.wait(10)
        for process in (speech, services):
            process.join(5 if stopped else 0)  # after a failure they still wait for "stop": no need to wait
            if process.is_alive():
                process.terminate()


def play(n: int, args, opts: dict, pids: list[int]) -> dict:
    """Warm up with one short stream, then n streams in real time; CPU sampled from /proc every 0.5 s."""
    warm = bench_load.Call(-1, 0.0)  # so module loading and first connections are not measured, on either side
    warm.frames = bench_load.media_frames(bench_load.dialogue(["hello"], 1.0), warm.stream_sid)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(bench_load.LoadProcess([warm], opts).run(loop.time()))
    if warm.error:
        raise SystemExit(f"warm-up stream failed: {warm.error}")
    sent = (len(warm.frames) + n * int(args.seconds / bench_load.FRAME_SECONDS)) * bench_load.FRAME_SECONDS
    time.sleep(1.0)
    ramp = args.ramp if args.ramp is not None else max(2.0, n / 20)
    schedule = [(i, ramp * i / n) for i in range(n)]
    loaders = [start_process(bench_load.run, schedule[k::args.processes], opts) for k in range(args.processes)]
    for _, conn in loaders:
        conn.recv()  # frames built
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.monotonic(), proc_cpu(pids)))

    t0, cpu0, load0 = time.monotonic() + 1.0, proc_cpu(pids), loadavg()
    threading.Thread(target=sample, daemon=True).start()
    for _, conn in loaders:
        conn.send(t0)
    results = [conn.recv() for _, conn in loaders]
    time.sleep(1.0)  # the streams' ends: closing them is part of what they cost
    cpu1 = proc_cpu(pids)
    done.set()
    # the steady state: every stream open (the last started at t0 + ramp), none ended yet (the first at t0 + seconds)
    window = [(t, c) for t, c in samples if t0 + ramp + 1.0 <= t <= t0 + args.seconds - 0.5]
    if len(window) < 3:
        raise SystemExit(f"no steady state: --seconds {args.seconds:g} must exceed the {ramp:g} s ramp by 3 s")
    errors = [error for r in results for _, _, error, _ in r["calls"] if error]
    return {"seconds": window[-1][0] - window[0][0], "cpu": window[-1][1] - window[0][1], "whole": cpu1 - cpu0,
            "errors": errors, "sent": sent, "late_p99": max(r["late_p99"] for r in results),
            "loads": (load0, loadavg())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node-sample", type=Path, required=True, metavar="DIR",
                        help="media-streams' node/realtime-transcriptions, after npm install (see above)")
    parser.add_argument("--streams", type=int, nargs="+", default=[50, 100], help="stream counts, each run on both")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of every stream")
    parser.add_argument("--ramp", type=float, default=None,
                        help="seconds over which the streams start (default N/20, at least 2)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of silence after each utterance")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--answers", action="store_true",
                        help="the stand-in answers each utterance: the sample logs it, Chatline runs a turn")
    args = parser.parse_args()
    if not (args.node_sample / "node_modules/@google-cloud/speech").is_dir():
        raise SystemExit(f"{args.node_sample}: no node_modules/@google-cloud/speech; run npm install there first")
    package = json.loads((args.node_sample / "node_modules/@google-cloud/speech/package.json").read_text())
    node_version = subprocess.check_output(["node", "--version"], text=True).strip()
    logs = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    print(f"{args.seconds:g} s streams of speech ({', '.join(UTTERANCES)}, {args.gap:g} s gaps), stand-in "
          f"{'answering' if args.answers else 'silent'}; node {node_version}, @google-cloud/speech "
          f"{package['version']}; {os.cpu_count()} CPUs; logs in {logs}", flush=True)
    print("steady: every stream open; % core per stream = CPU s / steady s / streams; whole run: from the first "
          "connection to 1 s after the last stream, per stream-second; msgs: audio requests the stand-in got per "
          "stream per second of audio; heard: audio the stand-in got / audio sent")
    print(f"{'streams':>7}  {'server':<11} {'steady s':>8} {'CPU s':>6} {'% core/stream':>13} {'whole run':>9} "
          f"{'msgs/s':>6} {'heard':>6} {'errors':>6}  load average")
    for n in args.streams:
        per_stream = {}
        for system in ("node sample", "chatline"):
            r = measure(system, n, args, logs)
            per_stream[system] = r["cpu"] / r["seconds"] / n
            heard = r["heard"]
            print(f"{n:>7}  {system:<11} {r['seconds']:>8.1f} {r['cpu']:>6.2f} {100 * per_stream[system]:>12.2f}% "
                  f"{100 * r['whole'] / (n * args.seconds):>8.2f}% "
                  f"{heard['requests'] / max(heard['audio_seconds'], 1e-9):>6.1f} "
                  f"{100 * heard['audio_seconds'] / r['sent']:>5.1f}% {len(r['errors']):>6}  "
                  f"{r['loads'][0]} -> {r['loads'][1]}", flush=True)
            for what, problems in (("stream errors", r["errors"]), ("errors logged", r["logged"])):
                if problems:
                    print(f"{'':9}{len(problems)} {what}, first: {problems[0]}")
            if r["late_p99"] > 0.02:
                print(f"{'':9}WARNING: load generator late by p99 {1000 * r['late_p99']:.0f} ms (a bottleneck itself)")
        print(f"{n:>7}  chatline / node sample, CPU per stream in the steady state: "
              f"{per_stream['chatline'] / per_stream['node sample']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
