"""The collector's young generation is raised while bulk work runs and restored after the last of it."""

from __future__ import annotations

import gc
import threading

from rcm.kit.collector import YOUNG_THRESHOLD, larger_young_generation


def test_the_threshold_is_raised_while_work_runs_and_restored_after_the_last() -> None:
    before = gc.get_threshold()
    with larger_young_generation():
        assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), *before[1:])
        with larger_young_generation():  # nested (two jobs in one process): one raise
            assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)
        assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)  # the outer one still runs
    assert gc.get_threshold() == before


def test_concurrent_work_in_threads_restores_once_every_one_ended() -> None:
    before = gc.get_threshold()
    inside, release = threading.Barrier(3), threading.Event()

    def work() -> None:
        with larger_young_generation():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)
    release.set()
    for thread in threads:
        thread.join()
    assert gc.get_threshold() == before


def test_a_failing_block_restores_too() -> None:
    before = gc.get_threshold()
    try:
        with larger_young_generation():
            raise RuntimeError("the job failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
