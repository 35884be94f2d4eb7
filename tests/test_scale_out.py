"""The scale-out projection: from what one fresh node measured to N nodes at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import render_report
from bench.report.scale_out import NodeCost, node_costs, scale_checks
from bench.report.view import RunView
from bench.results.metrics import Sample
from bench.results.store import load_run
from bench.servers.link import LinkRate
from tests.stored_runs import metadata, write_run

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


def _nodes_samples(samples: list[Sample]) -> list[Sample]:
    """volume in a --nodes 1,2 run: on one node 10 s to serve, 8 s of it copying 1 GB from
    the store; on two nodes each node's own rows, and the start's all_ready_s."""
    added = []
    for trial, (one, two) in enumerate([(10.0, 19.0), (10.5, 20.0), (9.5, 18.0)], start=1):
        for metric, value in (("model_ready_s", one), ("pull_s", 0.5), ("pull_bytes", 0.0),
                              ("node_fetch_s", 7.5), ("node_fetch_bytes", 1e9)):
            added.append(Sample("volume", "-", "1 fresh node, node 0", trial, metric, value))
        added.append(Sample("volume", "-", "1 fresh node", trial, "all_ready_s", one))
        for node in (0, 1):  # the two-node starts are no base of the projection
            for metric, value in (("model_ready_s", two - node), ("pull_s", 0.5),
                                  ("node_fetch_s", 16.0), ("node_fetch_bytes", 1e9)):
                added.append(Sample("volume", "-", f"2 fresh nodes, node {node}", trial,
                                    metric, value))
        added.append(Sample("volume", "-", "2 fresh nodes", trial, "all_ready_s", two))
    return samples + added


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_nodes_run_checks_its_projection_against_the_nodes_that_ran(
        tmp_path: Path, lang: str) -> None:
    # The servers' egress 1 Gbit (125 MB/s): the run's --link-rate, as run.json stores it.
    meta = metadata(config={"trials": 3, "options": {"link_rate": {"bits_per_s": 10**9}}})
    folder = write_run(tmp_path, "nodes", meta=meta, edit=_nodes_samples)
    view = RunView.of(load_run(folder))
    (cost,) = [c for c in node_costs(view) if c.strategy == "volume"]
    # From the one-node starts only, under the strategy's own condition.
    assert (cost.condition, cost.serving_s, cost.transfer_s) == ("-", 10.0, 8.0)
    checks = {c.nodes: c for c in scale_checks(view, node_costs(view))}
    assert sorted(checks) == [1, 2]
    # N = 2: 2 GB through 125 MB/s take 16 s, after the 2 s that are no transfer: 18 s
    # projected against the 19 s measured (the median of 19, 20 and 18).
    assert (checks[2].measured_s, checks[2].projected_s) == (19.0, 18.0)
    assert checks[2].error == pytest.approx(18 / 19 - 1)
    text = render_report(folder, lang, ()).report.read_text()
    heading = {"en": "## Scale-out, measured on several nodes",
               "es": "## Escalado, medido en varios nodos"}[lang]
    assert heading in text and "| 2 | 19.00 s | 18.00 s | -5% |".replace(
        ".", "," if lang == "es" else ".") in text
    # A line through the measured points: 10 s at one node, 19 s at two: 9 s a node more,
    # which 1 GB a node would explain at 1 GB / 9 s (889 Mbit/s).
    assert ("| volume | 1.00 s | 9.00 s | 889 Mbit/s | 0% |".replace(
        ".", "," if lang == "es" else ".")) in text
    # Without a shaped link the run's egress is unknown: no check is made.
    loopback = write_run(tmp_path / "loop", "loop", edit=_nodes_samples)
    view = RunView.of(load_run(loopback))
    assert scale_checks(view, node_costs(view)) == []
