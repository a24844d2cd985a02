"""``rcm worker``: a worker process consuming every declared queue until SIGINT/SIGTERM."""

from __future__ import annotations

import importlib
import signal
import threading
from types import FrameType

import click
from dramatiq import Worker

from rcm.config import Settings, get_settings


def load_task_modules() -> None:
    from rcm.worker import TASK_MODULES

    for module in TASK_MODULES:
        importlib.import_module(module)


@click.command("worker")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Worker threads.")
def worker(threads: int) -> None:
    """Run a worker process (RabbitMQ from RCM_BROKER_URL; without it, only in-process jobs exist)."""
    from rcm.cli import role_database
    from rcm.kit.telemetry import configure_logging, configure_tracing
    from rcm.worker import configure_jobs, setup_broker, start_inprocess_worker, stop_inprocess_worker

    # Workers hold the app role's URL only (RCM_APP_DATABASE_URL): no control-plane and no admin rights.
    settings = role_database(get_settings())
    if not settings.broker_url:
        click.echo(
            "RCM_BROKER_URL is not set: an in-process broker receives nothing from other processes", err=True
        )
    configure_logging(settings.log_level)
    configure_tracing(settings.service_name, settings.otlp_endpoint)
    load_task_modules()
    broker = setup_broker(settings)
    configure_jobs(settings)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    running = start_inprocess_worker(broker, threads=threads)
    click.echo(f"worker consuming {sorted(broker.get_declared_queues())} with {threads} threads", err=True)
    stop.wait()
    stop_inprocess_worker(running)


def start_dev_worker(settings: Settings) -> Worker:
    """``rcm dev``: jobs run on worker threads inside the API process (in-process broker by default)."""
    from rcm.worker import configure_jobs, setup_broker, start_inprocess_worker

    load_task_modules()
    broker = setup_broker(settings)
    configure_jobs(settings)
    return start_inprocess_worker(broker)
