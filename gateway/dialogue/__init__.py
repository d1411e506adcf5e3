"""The dialogue of a live call: transcripts in, chatbot turns out, and what TwiML the call gets now."""
