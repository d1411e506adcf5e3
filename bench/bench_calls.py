"""N concurrent simulated calls against the real gunicorn gateway: turn latency, lost turns, CPU, memory, threads.

    PYTHONPATH=. .venv/bin/python -m bench.bench_calls --calls 250 --gap 10 --both-tracks
    PYTHONPATH=. .venv/bin/python -m bench.bench_calls --calls 300 --gap 10 --both-tracks --streams 300  # past the default
    PYTHONPATH=. .venv/bin/python -m bench.bench_calls --calls 300 --gap 10 --both-tracks --redis --workers 2

Twilio is played by several load processes (bench/bench_load.py), Google by the Speech stand-in in scripted mode,
the chatbot and Twilio's REST API by one small aiohttp process (bench/bench_services.py). The gateway is the
Procfile's `web:` process; its CPU is read from /proc for the gunicorn workers (and, with --redis, the
redis-server they share), so other load on the machine does not inflate it. With --redis the workers share one
REDIS_URL, and the kernel hands each webhook and each stream to either of them.
"""
from __future__ import annotations

import argparse
import asyncio
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
from chatline.procfile import ProcfileProcess, free_port, wait_for_port  # noqa: E402

ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL = "AC" + "be9c4" * 6 + "00", "bench-auth-token-0123456789abcdef", "https://chatline.bench"
UTTERANCES = ["hello", "book_a_table", "goodbye"]
TICK = os.sysconf("SC_CLK_TCK")


def workers_of(master: int, count: int = 1, timeout: float = 20.0) -> list[int]:
    """The gunicorn workers: the master's `count` children."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) >= count:
            return [int(child) for child in children[:count]]
        time.sleep(0.1)
    raise RuntimeError(f"fewer than {count} gunicorn workers appeared")


def proc_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used."""
    return sum(proc_cpu_split(pids))


def proc_cpu_split(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds the processes have used: system is the kernel's share (sockets, epoll, futexes)."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user / TICK, system / TICK


def proc_status(pids: list[int]) -> tuple[int, float]:
    """(threads, RSS in MB) of the processes together."""
    threads, rss = 0, 0.0
    for pid in pids:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        threads, rss = threads + int(status["Threads"]), rss + int(status["VmRSS"].split()[0]) / 1024
    return threads, rss


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    """A redis-server as production would run it (append-only file, fsync every second) on a free port."""
    port = free_port()
    log = open(directory / "redis.log", "ab")
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                                "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
                               stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process, 10)
    return process, f"redis://127.0.0.1:{port}/0"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start_process(target, *args):
    """A spawned child (no fork after gRPC) and our end of a pipe to it."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    return process, ours


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--both-tracks", action="store_true",
                        help="each stream also carries the outbound track (what the caller hears), as both_tracks")
    parser.add_argument("--ramp", type=float, default=None, help="seconds over which calls start (default N/20, >= 5)")
    parser.add_argument("--gap", type=float, default=6.0, help="seconds of caller silence after each utterance")
    parser.add_argument("--processes", type=int, default=3, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=None,
                        help="GATEWAY_THREADS (default: unset, the Procfile's default; calls beyond its streams fail)")
    parser.add_argument("--streams", type=int, default=None,
                        help="MAX_CONCURRENT_STREAMS (default: unset, the measured default; calls beyond it go to Gather)")
    parser.add_argument("--provider", choices=("google", "deepgram", "assemblyai"), default="google",
                        help="STT_PROVIDER; its stand-in runs in scripted mode")
    parser.add_argument("--turn-timeout", type=float, default=5.0, help="seconds after a final before a turn is lost")
    parser.add_argument("--history", choices=("full", "metadata", "off"), default="full",
                        help="CALL_HISTORY for the gateway (default full, the product's default), with the monitor on; off: both off")
    parser.add_argument("--database", metavar="URL", help="DATABASE_URL (default: a SQLite file in the logs folder)")
    parser.add_argument("--redis", action="store_true", help="call state in a redis-server started for the run")
    parser.add_argument("--workers", type=int, default=1, help="GATEWAY_WORKERS (more than 1 needs --redis)")
    parser.add_argument("--py-spy", metavar="FILE", help="record a py-spy profile of the (first) gateway worker "
                        "(a flame graph, or collapsed stacks if FILE ends in .txt)")
    args = parser.parse_args()
    n = args.calls
    ramp = args.ramp if args.ramp is not None else max(5.0, n / 20)
    logs = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    print(f"{args.provider}: {n} calls, call history {args.history}, starts over {ramp:g} s, {len(UTTERANCES)} turns "
          f"each with {args.gap:g} s gaps; "
          f"{os.cpu_count()} CPUs, load average {loadavg()}; logs in {logs}", flush=True)

    services_port = free_port()
    services_ready = multiprocessing.get_context("spawn").Event()
    services, services_conn = start_process(bench_services.serve, services_port, services_ready)
    speech_ready = multiprocessing.get_context("spawn").Event()
    speech, speech_conn = start_process(bench_services.speech, speech_ready,
                                        ["hello", "i would like to book a table", "goodbye"], 2 * n + 32,
                                        args.provider)
    speech_address = speech_conn.recv()
    if args.provider == "google":
        recognizer = {"SPEECH_EMULATOR_HOST": speech_address}
    else:
        prefix = args.provider.upper()
        recognizer = {f"{prefix}_URL": speech_address[0], f"{prefix}_API_KEY": speech_address[1]}
    services_ready.wait(30)
    services_url = f"http://127.0.0.1:{services_port}"
    redis_server, redis_url = start_redis(logs) if args.redis else (None, "")
    shared = {"REDIS_URL": redis_url, "GATEWAY_WORKERS": str(args.workers)} if redis_server is not None else {}
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_URL": PUBLIC_URL,
           "CHATBOT_URL": services_url + "/message", "TWILIO_API_URL": services_url, "STT_PROVIDER": args.provider,
           **recognizer, "HINTS": "hello, book a table, goodbye", "CALL_HISTORY": args.history,
           "MONITOR_PASSWORD": "bench" if args.history != "off" else "",
           "DATABASE_URL": args.database or f"sqlite:///{logs}/history.db", **shared}
    os.environ.pop("GATEWAY_THREADS", None)  # the default settings, or the ones given, even if this shell has others
    os.environ.pop("MAX_CONCURRENT_STREAMS", None)
    if args.threads:
        env["GATEWAY_THREADS"] = str(args.threads)
    if args.streams:
        env["MAX_CONCURRENT_STREAMS"] = str(args.streams)
    gateway = ProcfileProcess("web", log_path=logs / "gateway.log", bin_dir=str(Path(sys.executable).parent), env=env)
    gateway.start()
    time.sleep(1.0)  # the worker has logged its start-up lines
    print("gateway " + next((line.split(": ", 1)[1] for line in gateway.logs().splitlines() if " limits: " in line),
                            "logged no limits line"), flush=True)
    try:
        run(args, n, ramp, gateway, services_conn, speech_conn, logs, redis_server)
        if redis_server is not None:
            redis_commands(redis_url)
    finally:
        gateway.stop()
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait(10)
        for process in (services, speech):
            process.join(5)
            if process.is_alive():
                process.terminate()


def run(args, n: int, ramp: float, gateway: ProcfileProcess, services_conn, speech_conn, logs: Path,
        redis_server: subprocess.Popen | None) -> None:
    workers = workers_of(gateway.process.pid, args.workers)
    measured = workers + ([redis_server.pid] if redis_server is not None else [])
    print(f"gateway worker pids {workers}" + (f", redis-server {redis_server.pid}" if redis_server else ""),
          flush=True)
    port = gateway.port
    opts = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "public_url": PUBLIC_URL,
            "local_url": f"http://127.0.0.1:{port}", "local_addr": ("127.0.0.1", port),
            "utterances": UTTERANCES, "gap": args.gap, "both_tracks": args.both_tracks}
    warm = bench_load.Call(-1, 0.0)  # one call first, so imports and connection set-up are not measured
    warm.frames = bench_load.media_frames(bench_load.dialogue(["hello"], 1.5), warm.stream_sid)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(bench_load.LoadProcess([warm], opts).run(loop.time()))
    if warm.error:
        raise SystemExit(f"warm-up call failed: {warm.error}; see {logs / 'gateway.log'}")
    time.sleep(1.0)

    schedule = [(i, ramp * i / n) for i in range(n)]
    loaders = [start_process(bench_load.run, schedule[k::args.processes], opts) for k in range(args.processes)]
    for _, conn in loaders:
        conn.recv()  # frames built
    threads0, rss0 = proc_status(workers)
    (user0, system0), load_before = proc_cpu_split(measured), loadavg()
    peak = {"threads": threads0, "rss": rss0}
    cpu_samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            threads, rss = proc_status(workers)
            peak["threads"], peak["rss"] = max(peak["threads"], threads), max(peak["rss"], rss)
            cpu_samples.append((time.monotonic(), proc_cpu(measured)))

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.monotonic() + 1.0
    for _, conn in loaders:
        conn.send(t0)
    spy = None
    if args.py_spy:
        spy_format = "raw" if args.py_spy.endswith(".txt") else "flamegraph"
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(workers[0]), "--output", args.py_spy, "--nonblocking",
                                "--gil",  # only the thread holding the GIL: the sleeping stream threads hide the rest
                                "--format", spy_format,
                                "--duration", str(int(ramp + 3 * args.gap + 5))], stdout=subprocess.DEVNULL)
    results = [conn.recv() for _, conn in loaders]
    time.sleep(args.turn_timeout)  # late updates still count as arrivals (and as lost turns if past the limit)
    (user1, system1), load_after = proc_cpu_split(measured), loadavg()
    done.set()
    if spy:
        spy.wait()
    services_conn.send("stop")
    speech_conn.send("stop")
    services_result, speech_result = services_conn.recv(), speech_conn.recv()
    shortest = min(d for r in results for _, _, _, d in r["calls"])
    window = [(t, c) for t, c in cpu_samples if t0 + ramp + 1.0 <= t <= t0 + shortest - 0.5]
    steady = ((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]), window[-1][0] - window[0][0]) \
        if len(window) >= 3 else None
    report(args, n, results, services_result, speech_result, (user1 + system1 - user0 - system0, system1 - system0), threads0, rss0, peak, schedule,
           (load_before, load_after), gateway, steady)


def report(args, n, results, services, speech, cpu, threads0, rss0, peak, schedule, loads, gateway,
           steady) -> None:
    gateway_cpu, system_cpu = cpu
    calls = {sid: (error, duration, index) for r in results for index, sid, error, duration in r["calls"]}
    finals = dict(speech["finals"])
    arrivals: dict[str, tuple[str, float]] = {}
    for sid, tag, at in services["arrivals"]:
        arrivals.setdefault(tag, (sid, at))
    latencies, timely_by_call = [], {sid: 0 for sid in calls}
    for text, sent_at in finals.items():
        tag = text.rsplit(" ", 1)[-1]
        if tag in arrivals:
            sid, at = arrivals[tag]
            latencies.append(at - sent_at)
            if at - sent_at <= args.turn_timeout and sid in timely_by_call:
                timely_by_call[sid] += 1
    expected_turns = len(UTTERANCES) * n
    ok = sum(1 for sid, (error, _, _) in calls.items() if not error and timely_by_call[sid] >= len(UTTERANCES))
    lost = expected_turns - sum(min(v, len(UTTERANCES)) for v in timely_by_call.values())
    call_seconds = sum(duration for _, duration, _ in calls.values())
    durations = {index: duration for _, duration, index in calls.values()}
    concurrency = max(sum(1 for i, s in schedule if s <= t < s + durations.get(i, 0)) for _, t in schedule)
    errors = [e for e, _, _ in calls.values() if e]
    ms = [1000 * x for x in latencies]
    streamed = sum(1 for error, _, _ in calls.values() if "without a <Stream>" not in error)
    print(f"calls streamed {streamed} of {n}; ok {ok} / failed {n - ok}; turns {expected_turns}: lost {lost} "
          f"(finals sent by the stand-in {len(finals)}, updates received {len(services['arrivals'])})")
    if errors:
        print(f"  call errors ({len(errors)}), first: {errors[0]}")
    print(f"turn latency, final transcript -> call update received: p50 {percentile(ms, .5):.1f} ms, "
          f"p95 {percentile(ms, .95):.1f} ms, p99 {percentile(ms, .99):.1f} ms, max {max(ms, default=0):.1f} ms")
    what = "gateway workers + redis-server" if args.redis else "gateway worker"
    print(f"{what} CPU: {gateway_cpu:.2f} s over {call_seconds / 60:.1f} call-minutes = "
          f"{60 * gateway_cpu / call_seconds:.3f} CPU s per call-minute = "
          f"{100 * gateway_cpu / call_seconds:.2f} % of one core per active call (call set-up and turns included); "
          f"{100 * system_cpu / max(gateway_cpu, 1e-9):.0f} % of it in the kernel")
    if steady:
        print(f"  steady state, all {n} calls streaming ({steady[1]:.1f} s): {100 * steady[0]:.0f} % of a core = "
              f"{100 * steady[0] / n:.2f} % per call")
    print(f"gateway worker(s) at peak ({concurrency} concurrent calls): {peak['threads']} threads "
          f"({(peak['threads'] - threads0) / concurrency:.2f} per call), RSS {peak['rss']:.0f} MB "
          f"({1024 * (peak['rss'] - rss0) / concurrency:.0f} kB per call)")
    load_cpu = sum(r["cpu"] for r in results)
    busiest = max(r["cpu"] / max(r["wall"], 1e-9) for r in results)
    late_p99 = max(r["late_p99"] for r in results)
    print(f"load generator: {len(results)} processes, {load_cpu:.1f} CPU s in all (busiest at {100 * busiest:.0f} % "
          f"of a core), 20 ms ticks late by p99 {1000 * late_p99:.1f} ms / max "
          f"{1000 * max(r['late_max'] for r in results):.1f} ms; speech stand-in {speech['cpu']:.1f} CPU s, "
          f"REST + chatbot {services['cpu']:.1f} CPU s")
    if busiest > 0.8 or late_p99 > 0.02:
        print("  WARNING: the load generator itself was a bottleneck (a process near a full core, or late ticks)")
    print(f"machine load average before {loads[0]}, after {loads[1]}")
    problems = [line for line in gateway.logs().splitlines() if " ERROR " in line or "Traceback" in line]
    if problems:
        print(f"gateway logged {len(problems)} errors, first: {problems[0]}")


def redis_commands(url: str) -> None:
    """What the run asked of Redis: the commands it served most, from INFO commandstats."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    ranked = sorted(((v["calls"], k.removeprefix("cmdstat_"), v["usec_per_call"]) for k, v in stats.items()),
                    reverse=True)
    print("redis commands: " + ", ".join(f"{name} {calls} ({usec:.1f} us)" for calls, name, usec in ranked[:8]))


if __name__ == "__main__":
    main()
