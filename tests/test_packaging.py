"""The installed package: it carries the Procfile's commands and everything it reads at run time."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chatline.procfile import PROCESSES, read_procfile
from gateway.config import Config

ROOT = Path(__file__).resolve().parent.parent
BASE = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token"}


def test_packaged_commands_are_the_procfiles():
    """`chatline serve`/`demo` run what a Heroku-style host runs: the package's copy has not drifted from the file."""
    assert PROCESSES == read_procfile(ROOT / "Procfile")


def test_the_procfile_gives_gunicorn_the_threads_the_gateway_plans_streams_for():
    """Unset GATEWAY_THREADS means one number to gunicorn (the Procfile's fallback) and to the stream limit."""
    fallback = re.search(r"\$\{GATEWAY_THREADS:-(\d+)\}", read_procfile(ROOT / "Procfile")["web"])
    assert fallback, "the web: line must give gunicorn --threads ${GATEWAY_THREADS:-N}"
    config = Config.from_env(BASE)
    assert config.gateway_threads == int(fallback.group(1))
    assert config.max_concurrent_streams >= 100  # the sizing the README promises for one default process


@pytest.mark.slow
def test_the_built_wheel_carries_what_runs_outside_a_checkout(tmp_path):
    """`python -m build` (sdist, then the wheel from it): the recordings, the sample script and the page come along."""
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [wheel] = tmp_path.glob("chatline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = {"chatbot_api/default_script.yaml", "gateway/templates/index.html", "chatline/procfile.py",
              "chatline_common/redis_client.py",
              "standins/twiml_runner.py", "gateway/monitor/templates/monitor.html", "gateway/monitor/static/monitor.js",
              "gateway/monitor/static/monitor.css"}
    needed |= {f"chatline/audio/{path.name}" for path in (ROOT / "chatline" / "audio").glob("*.ulaw")}
    assert needed - names == set()
    assert "Procfile" not in names  # the commands travel as code (chatline.procfile.PROCESSES), not as a file
    [entry_points] = [zipfile.ZipFile(wheel).read(name).decode() for name in names
                      if name.endswith(".dist-info/entry_points.txt")]
    assert "chatline = chatline.cli:main" in entry_points
