"""Parse and validate the body of `POST /message` (contract section 1) without any web framework."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A Twilio CallSid is 34 characters; the cap only stops a client from filling memory with keys.
MAX_SESSION_ID_CHARS = 256


class BadMessageRequest(ValueError):
    """The request body is not a valid chatbot message; the text says what is wrong."""


@dataclass(frozen=True)
class MessageRequest:
    """One turn of the caller: what they said and which call it belongs to."""

    message: str
    session_id: str
    input: str | None = None
    caller: str | None = None


def parse_message_request(body: bytes | str, max_message_chars: int) -> MessageRequest:
    """Decode a JSON body and check it; raise BadMessageRequest with a clear reason if unusable."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # ValueError covers bad JSON and bad UTF-8
        raise BadMessageRequest(f"body is not valid JSON: {_short(error)}") from error
    if not isinstance(data, dict):
        raise BadMessageRequest(f"body must be a JSON object, got {_json_type(data)}")
    message = _required_string(data, "message")
    session_id = _required_string(data, "session_id")
    if not session_id.strip():
        raise BadMessageRequest("'session_id' must not be empty")
    if len(session_id) > MAX_SESSION_ID_CHARS:
        raise BadMessageRequest(f"'session_id' is longer than {MAX_SESSION_ID_CHARS} characters")
    if len(message) > max_message_chars:
        raise BadMessageRequest(f"'message' is longer than {max_message_chars} characters")
    input_kind = data.get("input")
    if input_kind is not None and not isinstance(input_kind, str):
        raise BadMessageRequest(f"'input' must be a string, got {_json_type(input_kind)}")
    # `caller`, `channel` and any other keys are informative (contract): never a reason to refuse.
    caller = data.get("caller")
    return MessageRequest(message, session_id, input_kind, caller if isinstance(caller, str) else None)


def _required_string(data: dict[str, Any], key: str) -> str:
    if key not in data:
        raise BadMessageRequest(f"missing '{key}'")
    value = data[key]
    if not isinstance(value, str):
        raise BadMessageRequest(f"'{key}' must be a string, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _short(error: Exception) -> str:
    return str(error)[:200]
