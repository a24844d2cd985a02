"""The bulk job on a real RabbitMQ: the upload's message is sent after commit and a real worker runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq import Worker

from rcm.bulk.tasks import QUEUE
from rcm.config import Settings
from rcm.worker import configure_jobs
from tests.brokers import real_broker
from tests.bulk.conftest import ndjson, upload
from tests.support import Api, encounter_payload

pytestmark = pytest.mark.broker


@pytest.fixture
def rabbitmq(settings: Settings) -> Iterator[dramatiq.Broker]:
    with real_broker(settings, QUEUE) as broker:
        # The worker's jobs open their own engine on the worker's event loop (the app role, as in production).
        configure_jobs(settings)
        yield broker


async def test_upload_runs_on_a_real_worker(rabbitmq: dramatiq.Broker, practice_api: Api) -> None:
    created = await upload(practice_api, ndjson(encounter_payload(), encounter_payload(), {"external_id": 1}))
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    worker = Worker(rabbitmq, queues={QUEUE}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        job = {}
        for _ in range(200):
            job = (await practice_api.get(f"/bulk-intakes/{job_id}")).json()
            if job["status"] == "done":
                break
            await asyncio.sleep(0.1)
    finally:
        worker.stop(timeout=10_000)
    assert (job["status"], job["lines_read"], job["accepted"], job["rejected"]) == ("done", 3, 2, 1)
