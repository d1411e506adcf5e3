"""The one place every Redis client of the project is made (REDIS_URL): pool, timeouts, retries, TLS, health checks."""
from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from redis.retry import Retry

SOCKET_TIMEOUT = 5.0  # a command Redis does not answer in this long fails, rather than hold a turn
CONNECT_TIMEOUT = 2.0
HEALTH_CHECK_SECONDS = 30  # an idle pooled connection is PINGed before use after this long (Heroku drops idle ones)


def redis_client(url: str, *, decode_responses: bool = False, socket_timeout: float = SOCKET_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT, retries: int = 6) -> redis.Redis:
    """A pooled client for `url` that rides out a Redis restart of a few seconds (retries with backoff).

    `rediss://` is TLS as Heroku Redis serves it: on a self-signed certificate, so the certificate is not checked
    (Heroku's documented setting); the connection is still encrypted, and the URL's password still required.
    """
    tls = {"ssl_cert_reqs": None} if url.lower().startswith("rediss://") else {}
    return redis.Redis.from_url(
        url, decode_responses=decode_responses, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
        health_check_interval=HEALTH_CHECK_SECONDS, retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError], **tls)
