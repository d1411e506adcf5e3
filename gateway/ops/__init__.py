"""Running the gateway: limits, graceful shutdown, stream recovery after a process dies, redacted logs."""
