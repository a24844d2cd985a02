"""``rcm worker``: a worker process consuming every declared queue until SIGINT/SIGTERM."""

from __future__ import annotations

import importlib
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click
from dramatiq import Worker

from rcm.config import Settings, get_settings

if TYPE_CHECKING:
    from rcm.worker.scheduler import Scheduler


def load_task_modules() -> None:
    from rcm.worker import TASK_MODULES

    for module in TASK_MODULES:
        importlib.import_module(module)


def start_scheduler(settings: Settings) -> Scheduler:
    """The periodic jobs (audit chainer and checkpointer, idempotency purge): every worker replica runs the
    scheduler; an advisory lock per job lets one replica at a time run each tick."""
    from rcm.config import app_database_url
    from rcm.worker.scheduler import Scheduler, periodic_jobs

    scheduler = Scheduler(settings, periodic_jobs(), lock_url=app_database_url(settings))
    scheduler.start()
    return scheduler


@click.command("worker")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Worker threads.")
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Also run the periodic jobs (audit chainer and checkpoints, purges).",
)
def worker(threads: int, scheduler: bool) -> None:
    """Run a worker process (RabbitMQ from RCM_BROKER_URL; without it, only in-process jobs exist)."""
    from rcm.kit.cli import role_database
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
    periodic = start_scheduler(settings) if scheduler else None
    click.echo(f"worker consuming {sorted(broker.get_declared_queues())} with {threads} threads", err=True)
    stop.wait()
    if periodic is not None:
        periodic.stop()
    stop_inprocess_worker(running)


def start_dev_worker(settings: Settings) -> Worker:
    """``rcm dev``: jobs run on worker threads inside the API process (in-process broker by default)."""
    from rcm.worker import configure_jobs, setup_broker, start_inprocess_worker

    load_task_modules()
    broker = setup_broker(settings)
    configure_jobs(settings)
    return start_inprocess_worker(broker)
