"""The scale-out projection: from what one fresh node measured to N nodes at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import render_report
from bench.report.scale_out import NodeCost, node_costs
from bench.report.view import RunView
from bench.results.metrics import Sample
from bench.results.store import load_run
from bench.servers.link import LinkRate
from tests.stored_runs import write_run

FRESH = "fresh node"


def test_n_nodes_share_the_servers_egress_and_peers_share_the_bytes() -> None:
    # 10 s to serve on one node, 4 s of it moving 1 GB; the servers send 1 GB/s in all.
    cost = NodeCost("volume", FRESH, serving_s=10.0, transfer_s=4.0, shared_bytes=1e9)
    egress = 1e9
    assert cost.all_serving_s(1, egress) == 10.0  # the node's own link was the bound
    assert cost.all_serving_s(4, egress) == 10.0  # 4 GB in 4 s: still the link
    assert cost.all_serving_s(10, egress) == 16.0  # 10 GB take 10 s: 6 s + 10 s
    assert cost.all_serving_s(100, egress) == 106.0
    assert cost.all_serving_s(100, egress, p2p=True) == 10.0  # each byte leaves once
    # A faster egress never makes it slower; more nodes never make it faster.
    times = [cost.all_serving_s(n, egress) for n in range(1, 101)]
    assert times == sorted(times)
    assert cost.all_serving_s(100, 10 * egress) < cost.all_serving_s(100, egress)


def _fresh_node_samples(samples: list[Sample]) -> list[Sample]:
    """volume on a fresh node in three trials and a warm-up; registry with a cold cache (a
    download) and a warm one (none); plus volume's plain starts, which are no fresh node."""
    added = []
    for trial, (ready, pull_s, pull_bytes, fetch_s) in enumerate(
            [(20.0, 1.0, 5e6, 9.0), (30.0, 2.0, 7e6, 11.0), (25.0, 1.5, 6e6, 10.0),
             (99.0, 9.0, 9e9, 9.0)], start=1):
        warmup = trial == 4
        for metric, value in (("model_ready_s", ready), ("pull_s", pull_s),
                              ("pull_bytes", pull_bytes), ("node_fetch_s", fetch_s),
                              ("node_fetch_bytes", 1e9)):
            added.append(Sample("volume", "-", FRESH, 0 if warmup else trial, metric, value,
                                warmup=warmup))
    for condition, download in (("cold cache, fresh node", True),
                                ("warm cache, fresh node", False)):
        for metric, value in (("model_ready_s", 12.0), ("pull_s", 0.5), ("pull_bytes", 1e6),
                              *((("download_s", 2.0), ("download_mb_per_s", 500.0))
                                if download else ())):
            added.append(Sample("registry", "-", condition, 1, metric, value))
    return samples + added


def test_the_costs_are_medians_of_fresh_node_starts(tmp_path: Path) -> None:
    folder = write_run(tmp_path, "fresh", edit=_fresh_node_samples)
    costs = {(c.strategy, c.condition): c for c in node_costs(RunView.of(load_run(folder)))}
    assert set(costs) == {("volume", FRESH), ("registry", "cold cache, fresh node"),
                          ("registry", "warm cache, fresh node")}
    volume = costs[("volume", FRESH)]  # the warm-up's 99 s and 9 GB are left out
    assert (volume.serving_s, volume.transfer_s, volume.shared_bytes) == (25.0, 11.5, 1.006e9)
    cold = costs[("registry", "cold cache, fresh node")]
    assert (cold.transfer_s, cold.shared_bytes) == (2.5, 1e6 + 1e9)  # 500 MB/s for 2 s
    warm = costs[("registry", "warm cache, fresh node")]
    assert (warm.transfer_s, warm.shared_bytes) == (0.5, 1e6)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_fresh_node_run_reports_its_projection_and_another_run_none(
        tmp_path: Path, lang: str) -> None:
    fresh = render_report(write_run(tmp_path, "fresh", edit=_fresh_node_samples), lang,
                          ("svg",), egress=LinkRate.parse("8Gbit"))
    text = fresh.report.read_text()
    heading = {"en": "## Scale-out, projected from one fresh node",
               "es": "## Escalado, proyectado desde un nodo nuevo"}[lang]
    assert heading in text and "8Gbit" in text
    assert (fresh.folder / "charts" / "scale_out.svg").exists()
    # volume's 1.006 GB per node at 1 GB/s: 100 nodes take 100.6 s of transfer after the
    # 13.5 s that are not transfer.
    assert {"en": "| 1m54.1s |", "es": "| 1m54,1s |"}[lang] in text
    plain = render_report(write_run(tmp_path / "plain", "plain"), lang, ("svg",))
    assert heading not in plain.report.read_text()
    assert not (plain.folder / "charts" / "scale_out.svg").exists()
