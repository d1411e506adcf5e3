"""The gateway's collaborators, built once at start-up from the configuration and never changed afterwards; their
threads and signal handlers start in a separate step (`start`), after everything is built."""
from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

from .calls.coordination import CallSignals, LocalSignals, LocalTurnLocks, TurnLocks, process_name
from .calls.live_calls import LiveCalls
from .calls.store import CallStore, InMemoryCallStore
from .chatbots import Chatbot, make_chatbot
from .config import Config
from .dialogue.relay_pushes import RelayPushes
from .dialogue import end_of_turn
from .monitor import CallEvents, build_events
from .ops.drain import Drain
from .ops.limits import CallDeadlines
from .services import Services
from .phone import link_note
from .twilio.messages import MessageSender
from .twilio.rest import CallUpdater

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class Wiring:
    """Everything a gateway process runs on. `redis` is the REDIS_URL client (None: state lives in this process)."""

    services: Services
    deadlines: CallDeadlines
    drain: Drain
    redis: object | None = None

    @property
    def config(self) -> Config:
        return self.services.config


def build(config: Config, *, store: CallStore | None = None, chatbot: Chatbot | None = None,
          updater: CallUpdater | None = None, events: CallEvents | None = None,
          executor: Executor | None = None) -> Wiring:
    """Build every collaborator from `config`; any given one (a test's stand-in) is used as it is. Without REDIS_URL
    call state, turn locks and signals live in this process; with it in Redis, chosen here once behind one interface
    each (CallStore, TurnLocks, CallSignals). Starts no thread."""
    client = _redis_client(config) if store is None else None
    me = process_name()
    turns: TurnLocks
    signals: CallSignals
    if client is not None:
        from .calls.redis_coordination import RedisSignals, RedisTurnLocks
        from .calls.redis_store import RedisCallStore

        store = RedisCallStore(client)
        # A turn holds its lock through the chatbot's answer and the wait for a prompt that may not be cut; a holder
        # that dies frees it at this expiry, and the fencing check drops a late answer of one that only stalled.
        turns = RedisTurnLocks(client, expiry_seconds=config.chatbot_timeout * 2 + 30, owner=me)
        signals = RedisSignals(client)
    else:
        store = store if store is not None else InMemoryCallStore()
        turns, signals = LocalTurnLocks(), LocalSignals()
    updater = updater or CallUpdater(config.twilio_account_sid, config.twilio_auth_token, config.twilio_api_url)
    events = events if events is not None else build_events(config)
    live = LiveCalls()
    pushes = RelayPushes(live)  # what a ConversationRelay bot says unprompted reaches the call holding its stream
    deadlines = CallDeadlines(config, store, updater, events, turns)
    drain = Drain(config, store, updater, live, turns)
    messages = MessageSender(config.twilio_account_sid, config.twilio_auth_token, config.twilio_api_url,
                             enabled=config.sms_links, max_per_call=config.sms_max_per_call,
                             claim=store.claim_text_message, on_result=_text_message_told(config, store, events))
    services = Services(
        config=config, store=store, chatbot=chatbot or make_chatbot(config, store, pushes.pushed),
        updater=updater,
        executor=executor or ThreadPoolExecutor(max_workers=32, thread_name_prefix="turn"), live=live,
        turns=turns, signals=signals, me=me, deadlines=deadlines, drain=drain, events=events, messages=messages,
        end_of_turn=end_of_turn.detector(config.turn_detector) if config.stt_provider != "twilio"
        else end_of_turn.WordsEndOfTurn())
    return Wiring(services, deadlines, drain, client)


def start(wiring: Wiring) -> None:
    """Start what runs in the background: the Media Streams' reader, the signals listener, the call clock
    (MAX_CALL_SECONDS), the SIGTERM handler (under gunicorn), and with Redis the heartbeat and the watch for other
    processes' orphaned streams."""
    services, config = wiring.services, wiring.config
    services.streams.start()
    services.signals.subscribe(services.heard_signal)
    if config.max_call_seconds:
        wiring.deadlines.start()
    if wiring.drain.install():
        log.info("graceful shutdown: on SIGTERM live calls finish their turn and move to the next process")
    if wiring.redis is not None and config.stt_provider != "twilio":
        from .ops.stream_recovery import StreamRecovery

        StreamRecovery(services, services.store, services.turns, wiring.drain).start()


def _text_message_told(config: Config, store: CallStore, events: CallEvents):
    """What a text message's result does (on the sender's thread, after the answer went out): an `action` in the
    monitor, and for one not sent the caller is owed that sentence before the next answer."""
    def told(call_sid: str, sent: bool, detail: str) -> None:
        events.action(call_sid, "sms-sent" if sent else "sms-refused", text=detail)
        if not sent:
            state = store.get(call_sid)
            language = (state.language if state is not None else "") or config.language
            store.owe(call_sid, link_note(language, False))
    return told


def _redis_client(config: Config):
    """A Redis client for REDIS_URL, or None without it (redis-py is imported only then)."""
    if not config.redis_url:
        return None
    from .calls.redis_store import connect

    return connect(config.redis_url)
