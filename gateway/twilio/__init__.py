"""Twilio's side of a call: TwiML builders, the Media Stream protocol and websocket, signatures, REST updates."""
