"""gunicorn settings for the Procfile's `web:` process: how many workers (see config.gateway_workers), and the
worker's last step (its call events flushed, its listeners stopped) before it exits."""
import os

from gateway.config import gateway_workers

workers = gateway_workers(os.environ)


def worker_exit(server, worker):
    """After the worker stopped serving (graceful shutdown or not): see gateway/ops/shutdown.py."""
    from gateway.ops.shutdown import close_app

    close_app(getattr(worker, "wsgi", None))
