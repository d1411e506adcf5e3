"""The OpenAI stand-in speaks the real protocol: the official `openai` package reads its answers, streams and errors."""
from __future__ import annotations

import json

import openai
import pytest

from standins.openai_api import Answer, Fault, OpenAIStandIn


@pytest.fixture
def api():
    def model(messages):
        if messages[-1]["content"] == "transfer me":
            return Answer("Putting you through.", (("transfer_call", {"to": "+15550001111"}),))
        return Answer("Hello there. How can I help you today?")

    with OpenAIStandIn(model) as standin:
        yield standin


def client(api, key=None):
    return openai.OpenAI(base_url=api.url, api_key=key or api.api_key, max_retries=0, timeout=5)


def test_the_official_client_reads_a_whole_completion_with_a_tool_call(api):
    completion = client(api).chat.completions.create(model="gpt-test", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "transfer me"}])
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == "gpt-test"
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Putting you through."
    call = choice.message.tool_calls[0]
    assert call.function.name == "transfer_call" and json.loads(call.function.arguments) == {"to": "+15550001111"}
    assert api.headers[0]["Authorization"] == f"Bearer {api.api_key}"


def test_the_official_client_streams_text_and_tool_call_fragments(api):
    chunks = list(client(api).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "transfer me"}], stream=True))
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    fragments = [t for c in chunks for t in (c.choices[0].delta.tool_calls or ())]
    assert text == "Putting you through."
    assert len(fragments) > 2 and fragments[0].function.name == "transfer_call" and fragments[0].id
    assert json.loads("".join(f.function.arguments or "" for f in fragments)) == {"to": "+15550001111"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("fault, error", [
    (Fault(status=429, retry_after=2), openai.RateLimitError),
    (Fault(status=500), openai.InternalServerError),
])
def test_the_official_client_sees_openais_errors(api, fault, error):
    api.faults.append(fault)
    with pytest.raises(error) as raised:
        client(api).chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["message"]
    if fault.retry_after:
        assert raised.value.response.headers["Retry-After"] == "2"


def test_a_wrong_key_is_refused_as_openai_does(api):
    with pytest.raises(openai.AuthenticationError) as raised:
        client(api, key="sk-wrong").chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "invalid_api_key"
