"""Partitions are shared out between worker processes: a second worker gets its share from the first."""
from __future__ import annotations

import pytest

from tests.conftest import cleanup_backend, make_config


@pytest.fixture()
def services(line):
    from bot.services import Services

    config, cleanup = make_config("production", line.url)  # 4 partitions
    services = Services(config)
    yield services
    services.close()
    cleanup_backend(cleanup)


def test_a_second_worker_gets_half_the_partitions_once_the_first_has_finished_with_them(services):
    from bot.worker import RedisWorker

    first, second = RedisWorker(services, threads=2), RedisWorker(services, threads=2)
    first.refresh_leases()
    assert first.owned == {0, 1, 2, 3}  # alone: all of them
    second.refresh_leases()
    assert second.owned == set()  # all taken
    first.refresh_leases()  # now two workers: two partitions each
    assert len(first.handing_over) == 2
    busy = services.queue.stream(sorted(first.handing_over)[0])
    first.active.add((busy, "1-0"))  # an entry from one of them is still being answered
    first.hand_over()
    assert len(first.owned) == 3 and len(first.handing_over) == 1
    first.active.clear()
    first.hand_over()
    assert len(first.owned) == 2 and not first.handing_over
    second.refresh_leases()
    assert len(second.owned) == 2 and not first.owned & second.owned
    first.refresh_leases(), second.refresh_leases()
    assert len(first.owned) == len(second.owned) == 2 and not first.handing_over and not second.handing_over
    first.release_leases()
    second.release_leases()
