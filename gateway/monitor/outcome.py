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


def decided(event: dict) -> tuple[bool, str | None]:
    """Whether this event decides how the call would end now, and how (None: nothing decided, the caller's move)."""
    kind = event["type"]
    if kind == "bot":
        return True, outcome_after_bot(event)
    if kind == "action" and event.get("action") in OUTCOME_OF_ACTION:
        return True, OUTCOME_OF_ACTION[event["action"]]
    return False, None


def follow(record: dict, event: dict) -> None:
    """Update a call's summary for one event. Events of one call may arrive out of order (several processes, Redis,
    batched writers): the latest event that decides something wins, and nothing after the end counts."""
    kind, at = event["type"], event["at"]
    if kind == "start":
        for key in ("caller", "called", "recognizer", "mode"):
            if event.get(key):
                record[key] = event[key]
        record["started_at"] = min(at, record.get("started_at", at))
        return
    if kind == "caller":
        record["turns"] = record.get("turns", 0) + 1
    if kind == "end":
        if record.get("ended_at") is None:
            record["ended_at"], record["end_status"] = at, event.get("status")
        return
    if kind == "action" and event.get("action") == "transfer" and event.get("target"):
        record["transferred_to"] = event["target"]  # whom the bot transferred to (the outcome says if it worked)
    deciding, outcome = decided(event)
    ended = record.get("ended_at")
    if deciding and (ended is None or at <= ended) and at >= record.get("outcome_at", 0.0):
        record["outcome"], record["outcome_at"] = outcome, at


def summary(record: dict) -> dict:
    """A call as the API lists it (contract: call_sid, caller, started_at, ended_at, status, turns, and more)."""
    ended = record.get("ended_at")
    status = (record.get("outcome") or outcome_at_end(record.get("end_status"))) if ended is not None else "live"
    return {"call_sid": record["call_sid"], "caller": record.get("caller") or "", "called": record.get("called") or "",
            "started_at": record.get("started_at"), "ended_at": ended, "status": status,
            "turns": record.get("turns", 0), "transferred_to": record.get("transferred_to"),
            "recognizer": record.get("recognizer"), "mode": record.get("mode")}
