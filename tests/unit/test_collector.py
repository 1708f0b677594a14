"""The collector tuning a service applies at start."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pigeon_common import collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_freezes_what_exists_and_makes_passes_rare() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    alive = [object() for _ in range(10)]
    collector.tune_for_service()
    assert gc.get_threshold() == (collector.GEN0_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() >= len(alive)
    collector.tune_for_service()  # a second service in the same process changes nothing
    assert gc.get_threshold() == (collector.GEN0_THRESHOLD, 10, 10)
