"""gunicorn settings for the Procfile's `web:` process: how many workers (see config.gateway_workers)."""
import os

from gateway.config import gateway_workers

workers = gateway_workers(os.environ)
