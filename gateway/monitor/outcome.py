"""How a call ended, decided from its events alone, so every process (and the database) reaches the same answer."""
from __future__ import annotations

# Actions that decide how the call will end if nothing else happens; "transfer-failed" brings the caller back.
OUTCOME_OF_ACTION = {"hangup": "bot-hangup", "no-input": "no-input", "call-limit": "call-limit",
                     "transferred": "transferred", "transfer-failed": None}
OUTCOMES = ("bot-hangup", "caller-hangup", "transferred", "no-input", "call-limit", "error")
FAILED_STATUSES = frozenset({"failed"})


def outcome_after_bot(event: dict) -> str | None:
    """After the bot answered: an apology for a failed chatbot leaves the call ending in error unless more follows."""
    return "error" if event.get("error") else None


def outcome_at_end(status: str | None) -> str:
    """The outcome of a call that ends with nothing decided before: Twilio failed it, or the caller hung up."""
    return "error" if status in FAILED_STATUSES else "caller-hangup"


def follow(record: dict, event: dict) -> None:
    """Update a call's summary (`status`, `outcome`, `transferred_to`, `turns`, `ended_at`) for one event."""
    kind = event["type"]
    if record.get("ended_at") is not None and kind != "start":
        return
    if kind == "start":
        for key in ("caller", "called", "recognizer", "mode"):
            if event.get(key):
                record[key] = event[key]
        record["started_at"] = event["at"]
    elif kind == "caller":
        record["turns"] = record.get("turns", 0) + 1
    elif kind == "bot":
        record["outcome"] = outcome_after_bot(event)
    elif kind == "action" and event.get("action") in OUTCOME_OF_ACTION:
        record["outcome"] = OUTCOME_OF_ACTION[event["action"]]
        if event.get("target"):
            record["transferred_to"] = event["target"]
    elif kind == "end":
        record["ended_at"] = event["at"]
        record["outcome"] = record.get("outcome") or outcome_at_end(event.get("status"))


def summary(record: dict) -> dict:
    """A call as the API lists it (contract: call_sid, caller, started_at, ended_at, status, turns, and more)."""
    ended = record.get("ended_at")
    return {"call_sid": record["call_sid"], "caller": record.get("caller") or "", "called": record.get("called") or "",
            "started_at": record.get("started_at"), "ended_at": ended,
            "status": (record.get("outcome") or "caller-hangup") if ended is not None else "live",
            "turns": record.get("turns", 0), "transferred_to": record.get("transferred_to"),
            "recognizer": record.get("recognizer"), "mode": record.get("mode")}
