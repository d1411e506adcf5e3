"""The Heroku button's app.json agrees with the Procfile and with the variables the gateway reads, so they cannot drift."""
from __future__ import annotations

import json
import re

import pytest

from chatline.procfile import read_procfile
from gateway.config import Config, ConfigError
from tests.conftest import ROOT

APP = json.loads((ROOT / "app.json").read_text())
# What each add-on sets in the app's environment (Heroku's documented variables).
ADDON_VARIABLES = {"heroku-redis": "REDIS_URL", "heroku-postgresql": "DATABASE_URL"}


def variables_read() -> set[str]:
    """Every variable gateway/config.py reads, and those the Procfile's commands take."""
    source = (ROOT / "gateway" / "config.py").read_text()
    names = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source))
    names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", (ROOT / "Procfile").read_text()))
    return names


def always_required() -> set[str]:
    """The variables the gateway refuses to start without, as its configuration error names them."""
    with pytest.raises(ConfigError) as error:
        Config.from_env({})
    return set(re.findall(r"([A-Z][A-Z0-9_]+) is required\b", str(error.value)))


def test_the_formation_runs_exactly_the_procfiles_process_types():
    procfile = read_procfile(ROOT / "Procfile")
    assert set(APP["formation"]) == set(procfile) == {"web", "chatbot"}
    assert APP["formation"]["web"]["quantity"] >= 1
    assert APP["formation"]["chatbot"]["quantity"] == 0  # optional: a web dyno cannot reach it on Heroku anyway


def test_every_variable_is_one_the_gateway_reads_and_says_what_it_is_for():
    known = variables_read()
    assert {"TWILIO_ACCOUNT_SID", "MONITOR_PASSWORD", "GATEWAY_THREADS"} <= known  # the scan itself works
    for name, spec in APP["env"].items():
        assert name in known, f"app.json sets {name}, which the gateway does not read"
        assert len(spec["description"]) > 20, name


def test_the_required_variables_are_asked_for():
    required = always_required()
    assert required == {"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"}
    for name in required:
        spec = APP["env"][name]
        assert spec.get("required", True) and "value" not in spec and "generator" not in spec, name


def test_the_monitor_password_is_generated():
    assert APP["env"]["MONITOR_PASSWORD"]["generator"] == "secret"


def test_redis_and_postgres_come_as_add_ons_setting_what_the_gateway_reads():
    plans = {(addon if isinstance(addon, str) else addon["plan"]).split(":")[0] for addon in APP["addons"]}
    assert plans == set(ADDON_VARIABLES)
    assert set(ADDON_VARIABLES.values()) <= variables_read()
    assert not set(ADDON_VARIABLES.values()) & set(APP["env"])  # the add-ons set them; the form must not ask


def test_optional_variables_are_marked_so_and_defaults_are_valid():
    env = {name: spec["value"] for name, spec in APP["env"].items() if "value" in spec}
    config = Config.from_env({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t", **env})
    assert config.chatbot_protocol == APP["env"]["CHATBOT_PROTOCOL"]["value"]
    for name, spec in APP["env"].items():
        if name not in always_required() | {"CHATBOT_URL", "MONITOR_PASSWORD"}:
            assert spec.get("required") is False, f"{name} is optional in the gateway but required by app.json"


def test_the_readme_deploys_with_the_button():
    readme = (ROOT / "README.md").read_text()
    assert "https://www.herokucdn.com/deploy/button.svg" in readme and "https://heroku.com/deploy" in readme
