"""HTTP Basic auth for the monitor: user `operator` and MONITOR_PASSWORD, compared in constant time."""
from __future__ import annotations

import hmac

from flask import Request, Response

USER = "operator"
REALM = "Chatline monitor"


def authorized(req: Request, password: str) -> bool:
    """Whether the request carries Basic credentials for `operator` with `password`; both parts are always compared,
    so the time taken tells nothing about which was wrong."""
    given = req.authorization
    if given is None or given.type != "basic":
        return False
    user_ok = hmac.compare_digest((given.username or "").encode(), USER.encode())
    password_ok = hmac.compare_digest((given.password or "").encode(), password.encode())
    return user_ok and password_ok


def challenge() -> Response:
    """The 401 asking for credentials; it says nothing about any call."""
    return Response("Authentication required.\n", status=401, mimetype="text/plain",
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
