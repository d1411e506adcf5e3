"""Call state: what the gateway knows of each call, in this process or in Redis, and one turn at a time."""
