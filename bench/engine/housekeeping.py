"""Housekeeping by label: what a run (or every run) left in the engine, and its removal.
Used by `clean`, the sweep of dead runs and every exit path of a run."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import docker.errors

from bench.engine.containers import ContainerJobs
from bench.engine.swarm import SWARM_SERVICE_LABEL, SwarmJobs
from bench.engine.types import KEEP_LABEL, OWNER_PID_LABEL, RUN_LABEL


class Housekeeping(SwarmJobs, ContainerJobs):
    # Containers and images are listed by the engine's list calls alone: the SDK's
    # containers.list and images.list inspect every object after listing it, and an object
    # another run removed in between raised NotFound (two engine lanes of the tests, a
    # run's start sweeping while another run tore down).
    def _containers(self, selector: Mapping[str, str | list[str]]) -> list[dict[str, Any]]:
        return list(self._api.containers(all=True, filters=selector))

    def _images(self, selector: Mapping[str, str | list[str]]) -> list[dict[str, Any]]:
        return list(self._api.images(filters=selector))

    def labelled(self, label: str) -> dict[str, list[str]]:
        """Names of every container, image, volume and network carrying ``label``."""
        selector = {"label": label}
        return {
            "containers": [str(c["Names"][0]).lstrip("/") for c in self._containers(selector)],
            "images": [str(i["Id"]).removeprefix("sha256:")[:12] for i in self._images(selector)],
            "volumes": [v.name for v in self._client.volumes.list(filters=selector)],
            "networks": [n.name for n in self._client.networks.list(filters=selector)],
        }


    def remove_labelled(self, label: str, *, images: bool = True) -> dict[str, int]:
        """Remove everything carrying ``label`` (services and containers first: they hold
        the rest)."""
        selector = {"label": label}
        removed = {"containers": 0, "images": 0, "volumes": 0, "networks": 0}
        if self.swarm_active():
            for service in self._api.services(filters=selector):
                self.remove_service(str(service["ID"]))
            # Only the services' task containers go away by themselves: the run's plain
            # containers (its S3 server) are removed below. Waiting for every labelled
            # container once waited out the whole time-out (60 s) in every swarm run with
            # a registry strategy.
            self._wait_for_no_containers({"label": [label, SWARM_SERVICE_LABEL]})
        for container in self._containers(selector):
            self.remove_container(str(container["Id"]))
            removed["containers"] += 1
        # A network whose last endpoint is still going away (swarm removes its tasks'
        # endpoints asynchronously, slower on a busy machine) refuses removal for a moment:
        # retry a few times rather than leave it behind.
        for attempt in range(8):
            networks = self._client.networks.list(filters=selector)
            for network in networks:
                try:
                    network.remove()
                    removed["networks"] += 1
                except docker.errors.APIError:
                    pass
            if not networks or not self._client.networks.list(filters=selector):
                break
            time.sleep(0.25 * (attempt + 1))
        for volume in self._client.volumes.list(filters=selector):
            self.remove_volume(str(volume.name))
            removed["volumes"] += 1
        if images:
            # A build step container that is still stopping holds its parent image for a
            # moment: retry a few times rather than leave a labelled image behind.
            for attempt in range(8):  # up to 18 s: a busy engine frees layers late
                leftover = self._images(selector)
                for image in leftover:
                    try:
                        self._api.remove_image(image["Id"], force=True, noprune=False)
                        removed["images"] += 1
                    except docker.errors.APIError:
                        pass
                if not self._images(selector):
                    break
                for container in self._containers(selector):
                    self.remove_container(str(container["Id"]))
                time.sleep(0.5 * (attempt + 1))
        return removed

    def _wait_for_no_containers(self, selector: Mapping[str, str | list[str]],
                                timeout_s: float = 60) -> bool:
        """Swarm removes a service's task containers asynchronously: wait for them. False:
        the time-out ran out first (what is left is removed by force after)."""
        deadline = time.monotonic() + timeout_s
        while self._containers(selector):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.3)
        return True

    def run_labels(self, selector: str) -> set[str]:
        """Distinct values of the run label on objects matching ``selector`` (for sweeps)."""
        found: set[str] = set()
        for listed in (*self._containers({"label": selector}),
                       *self._images({"label": selector})):
            found.add((listed.get("Labels") or {}).get(RUN_LABEL, ""))
        for volume in self._client.volumes.list(filters={"label": selector}):
            found.add((volume.attrs.get("Labels") or {}).get(RUN_LABEL, ""))
        for network in self._client.networks.list(filters={"label": selector}):
            found.add((network.attrs.get("Labels") or {}).get(RUN_LABEL, ""))
        found.discard("")
        return found

    def owner_pids(self, run_id: str) -> set[int]:
        pids: set[int] = set()
        selector = {"label": f"{RUN_LABEL}={run_id}"}
        for listed in (*self._containers(selector), *self._images(selector)):
            pids.add(int((listed.get("Labels") or {}).get(OWNER_PID_LABEL, "0")))
        for network in self._client.networks.list(filters=selector):
            pids.add(int((network.attrs.get("Labels") or {}).get(OWNER_PID_LABEL, "0")))
        return pids

    def keeps(self, run_id: str) -> bool:
        images = self._images({"label": f"{RUN_LABEL}={run_id}"})
        return any((image.get("Labels") or {}).get(KEEP_LABEL) == "1" for image in images)

