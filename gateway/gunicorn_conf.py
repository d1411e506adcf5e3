"""gunicorn settings for the Procfile's `web:` process: how many workers (see config.gateway_workers), and the
directory where the workers share their Prometheus figures (gateway/metrics.py); and the
worker's last step (its call events flushed, its listeners stopped) before it exits."""
import logging
import os
import shutil
import tempfile

from gateway.config import gateway_workers
from gateway.metrics import MULTIPROC_DIR

workers = gateway_workers(os.environ)
# gunicorn 25.1+ opens a control socket at one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl) for its
# `gunicornc` tool: every gateway on a machine (`chatline serve` beside the sample bot, the tests' many gateways) would
# take it from the one before. Nothing here uses it.
control_socket_disable = True
log = logging.getLogger("gunicorn.error")
_made_here = None  # the temporary directory this master made (PROMETHEUS_MULTIPROC_DIR unset), removed at exit


def on_starting(server):
    """In the master, before any worker: the metrics directory, empty, in the environment the workers inherit.

    Unset (a Heroku dyno, `chatline serve`): a fresh temporary directory of this master's. Set: emptied, since
    figures of an earlier run would be added to this one's. prometheus-client is not imported here: the workers
    import it after the fork, with the variable already set, so they start in its multiprocess mode.
    """
    global _made_here
    path = os.environ.get(MULTIPROC_DIR)
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    else:
        path = _made_here = tempfile.mkdtemp(prefix="chatline-metrics-")
        os.environ[MULTIPROC_DIR] = path
    log.info("metrics: the workers share their figures in %s", path)


def child_exit(server, worker):
    """A worker is gone: its live gauges (calls, streams) stop counting; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """The master stops: remove the temporary metrics directory it made."""
    if _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)


def worker_exit(server, worker):
    """After the worker stopped serving (graceful shutdown or not): see gateway/ops/shutdown.py."""
    from gateway.ops.shutdown import close_app

    close_app(getattr(worker, "wsgi", None))
