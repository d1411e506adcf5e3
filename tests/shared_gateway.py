"""One gunicorn gateway shared by a module's tests that need the same settings, with its own stand-ins and spy.

Starting gunicorn costs seconds; tests that only need the default settings share one. Each test sees the spies as if
new: the chatbot spy reset, and the gateway's logs, the speech streams and the Twilio stand-in's REST requests only
from the test's own start. Use `shared_gateway_fixtures()` in a module to override `gateway`, `chatbot`, `speech` and
`twilio` there.
"""
from __future__ import annotations

import pytest

from chatline.procfile import ProcfileProcess
from tests.chatbot_spy import ChatbotSpy
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BIN_DIR, SPEED, gateway_env
from tests.ports import free_port


class Since:
    """A view of a shared stand-in or process that shows only what happened after it was made."""

    def __init__(self, target, **marks: int) -> None:
        self._target, self._marks = target, marks

    def __getattr__(self, name: str):
        return getattr(self._target, name)

    def logs(self) -> str:
        return self._target.logs()[self._marks["logs"]:]

    @property
    def streams(self) -> list:
        return self._target.streams[self._marks["streams"]:]

    @property
    def rest_requests(self) -> list[dict]:
        return self._target.rest_requests[self._marks["rest_requests"]:]


class SharedGateway:
    """The Procfile's `web:` process with the default test settings, its Twilio and Google stand-ins, a chatbot spy."""

    def __init__(self, folder, chatbot_url: str, **overrides: str) -> None:
        from standins.speech import SpeechStandIn
        from standins.twilio import TwilioStandIn

        self.twilio = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, speed=SPEED).start()
        self.chatbot = ChatbotSpy(upstream=chatbot_url).__enter__()
        self.speech = SpeechStandIn().__enter__()
        env = gateway_env(self.twilio, self.chatbot, folder, SPEECH_EMULATOR_HOST=self.speech.address, **overrides)
        self.process = ProcfileProcess("web", env=env, port=free_port(), log_path=folder / "gateway.log",
                                       bin_dir=BIN_DIR).start()
        self.twilio.tunnel[env["PUBLIC_URL"]] = self.process.url

    def stop(self) -> None:
        self.process.stop()
        self.twilio.stop()
        self.speech.__exit__(None, None, None)
        self.chatbot.__exit__(None, None, None)


def shared_gateway_fixtures(**overrides: str):
    """Module fixtures: one SharedGateway for the module; `gateway`, `chatbot`, `speech`, `twilio` views per test."""

    @pytest.fixture(scope="module")
    def shared(tmp_path_factory, chatbot_process):
        gateway = SharedGateway(tmp_path_factory.mktemp("shared-gateway"), chatbot_process.url + "/message",
                                **overrides)
        yield gateway
        gateway.stop()

    @pytest.fixture
    def gateway(shared):
        return Since(shared.process, logs=len(shared.process.logs()))

    @pytest.fixture
    def chatbot(shared):
        return shared.chatbot.reset()

    @pytest.fixture
    def speech(shared):
        return Since(shared.speech, streams=len(shared.speech.streams))

    @pytest.fixture
    def twilio(shared):
        return Since(shared.twilio, rest_requests=len(shared.twilio.rest_requests))

    return shared, gateway, chatbot, speech, twilio
