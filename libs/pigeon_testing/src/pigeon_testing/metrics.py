"""Reading a service's /metrics in tests: every sample by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

SampleKey = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Samples:
    """One scrape's samples; a sample that is absent reads as 0 (a labelled counter
    appears only once it was first counted)."""

    values: dict[SampleKey, float]

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _ in self.values}


def parse(text: str) -> Samples:
    values: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Samples(values)


async def scrape(url: str) -> Samples:
    """GET `url` (a service's /metrics) on a fresh connection and parse it."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(answer.text)
