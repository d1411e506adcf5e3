"""Real PostgreSQL and Redis servers for the tests, each in a temp folder on a free port, stopped afterwards."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest

from tests.ports import free_port


def postgres_bin() -> str | None:
    """Debian's PostgreSQL binaries (CI installs them), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _unprivileged() -> tuple[list[str], int, int]:
    """How to run a command as a user PostgreSQL accepts (it refuses root): the prefix, and that user's ids."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
    pytest.skip("running as root and no postgres or nobody user to run PostgreSQL as")


class Postgres:
    """A throwaway PostgreSQL cluster; `url` is in Heroku's postgres:// form."""

    def __init__(self, bin_dir: str):
        self.bin_dir = bin_dir
        self.prefix, uid, gid = _unprivileged()
        self.dir = tempfile.mkdtemp(prefix="chatline-pg-")  # not under pytest's root-only tmp folders
        os.chown(self.dir, uid, gid)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.url = f"postgres://chatline@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, os.path.join(self.bin_dir, args[0]), *args[1:]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def init(self) -> Postgres:
        self._run("initdb", "-D", self.data, "-U", "chatline", "-A", "trust", "--no-sync")
        return self.start()

    def start(self) -> Postgres:
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "start", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped by the test
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def postgres_server():
    """A running PostgreSQL (skipped with the reason when its binaries are not installed)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; CI does)")
    server = Postgres(bin_dir).init()
    try:
        yield server
    finally:
        server.remove()


@contextmanager
def redis_server():
    """A running redis-server on a free port, no persistence; yields its redis:// URL."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; CI does)")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="chatline-redis-")
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
