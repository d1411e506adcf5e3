"""The webhooks and the Media Stream handler Twilio talks to, one blueprint each."""
