"""Local stand-ins for the outside services Chatline talks to (Twilio, speech-to-text), speaking their real protocols."""
