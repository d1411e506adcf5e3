"""The chatbot seam and its protocols (CHATBOT_PROTOCOL): chatline (the contract), rasa (REST channel), openai,
conversationrelay (Twilio ConversationRelay's websocket, the gateway in Twilio's place)."""
from __future__ import annotations

from ..calls.store import CallStore
from ..config import Config
from .base import CallSessions, Chatbot, FirstSentence
from .chatline import ChatlineChatbot
from .conversationrelay import ConversationRelayChatbot
from .openai import OpenAIChatbot
from .rasa import RasaChatbot
from .relay_session import PushCallback

__all__ = ["CallSessions", "Chatbot", "FirstSentence", "ChatlineChatbot", "ConversationRelayChatbot", "OpenAIChatbot",
           "RasaChatbot", "make_chatbot"]


def make_chatbot(config: Config, store: CallStore, on_unprompted: PushCallback | None = None) -> Chatbot:
    """The chatbot client CHATBOT_PROTOCOL names, for CHATBOT_URL; `store` keeps the history of those that need it;
    `on_unprompted` takes what a ConversationRelay bot says with no prompt pending (the dialogue's RelayPushes)."""
    if config.chatbot_protocol == "conversationrelay":
        return ConversationRelayChatbot(config.chatbot_url, account_sid=config.twilio_account_sid,
                                        auth_token=config.twilio_auth_token, api_key=config.chatbot_api_key,
                                        parameters=config.chatbot_parameters, handoff_url=config.chatbot_handoff_url,
                                        timeout=config.chatbot_timeout, language=config.language,
                                        chars_per_second=config.say_chars_per_second, on_unprompted=on_unprompted,
                                        max_session_seconds=config.max_call_seconds + 60 if config.max_call_seconds
                                        else 0)
    if config.chatbot_protocol == "rasa":
        return RasaChatbot(config.chatbot_url, config.chatbot_timeout, config.chatbot_greeting_message)
    if config.chatbot_protocol == "openai":
        return OpenAIChatbot(config.chatbot_url, store, model=config.chatbot_model, prompt=config.chatbot_prompt,
                             api_key=config.chatbot_api_key, temperature=config.chatbot_temperature,
                             history_turns=config.chatbot_history_turns, stream=config.chatbot_stream,
                             timeout=config.chatbot_timeout)
    return ChatlineChatbot(config.chatbot_url, timeout=config.chatbot_timeout)
