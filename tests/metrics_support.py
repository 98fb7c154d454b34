"""Reading `GET /metrics` the way Prometheus does: parsed by prometheus_client's own text parser."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


async def scrape(root: str, headers: Mapping[str, str] | None = None) -> list[Sample]:
    async with aiohttp.ClientSession() as session, session.get(f"{root}/metrics", headers=headers) as got:
        assert got.status == 200, await got.text()
        assert got.headers["Content-Type"].startswith("text/plain")
        text = await got.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def generation(url: str, headers: Mapping[str, str], generation_id: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(
            f"{url}/generation", params={"id": generation_id}, headers=headers) as got:
        assert got.status == 200, await got.text()
        data: dict[str, object] = (await got.json())["data"]
        return data
