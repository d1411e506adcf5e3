"""Chatline tooling: running the Procfile's processes locally, and the `chatline` command."""
