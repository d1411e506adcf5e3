"""A real redis-server for the tests: a free port, a temp dir, the append-only file on, so a restart keeps the data."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from chatline.procfile import wait_for_port
from tests.ports import free_port


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, its data in `directory`; stop() and start() again is a restart."""

    def __init__(self, directory: Path):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.directory = directory
        self.port = free_port()
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
                        "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.port, self.process, 10)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:  # loading the append-only file answers LOADING for a moment
            try:
                client.ping()
                break
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)
