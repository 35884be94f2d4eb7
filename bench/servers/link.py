"""A link that is not loopback: `--link-rate` limits what the harness's servers (the OCI
registry, the S3 server) send, so pulls and downloads travel at a network's rate while the
service containers and the probes stay unshaped.

The limit is a tbf qdisc on the server container's eth0 egress, set from the host inside the
container's network namespace (`nsenter -t PID -n tc ...`): no container gets NET_ADMIN.
The bytes a server sent are read from the host as well, from /proc/PID/net/dev, which shows
the interfaces of PID's network namespace: what really crossed the link, not what a client
reports.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.errors import StepFailed, UsageError
from bench.host.host_tools import require

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(bit|bps)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
# The queue may hold this long a burst before tbf drops; tc's own examples use 50 ms.
LATENCY = "50ms"


@dataclass(frozen=True)
class LinkRate:
    bits_per_s: int

    @classmethod
    def parse(cls, text: str, option: str = "--link-rate") -> LinkRate:
        """'1Gbit', '100Mbit', '500kbit' (tc's decimal units; "bps" means bytes, as in tc)."""
        match = _RATE.match(text)
        if not match:
            raise UsageError(f"{option} {text!r} is not a rate: pass e.g. 1Gbit or 100Mbit")
        number, prefix, unit = match.groups()
        bits = float(number) * _SCALE[prefix.lower()] * (8 if (unit or "").lower() == "bps"
                                                          else 1)
        if bits < 64_000:
            raise UsageError(f"{option} {text} is below 64kbit: a model would take days")
        return cls(int(bits))

    @property
    def bytes_per_s(self) -> float:
        return self.bits_per_s / 8

    def __str__(self) -> str:
        for prefix, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
            if self.bits_per_s >= scale and self.bits_per_s % scale == 0:
                return f"{self.bits_per_s // scale}{prefix}bit"
        return f"{self.bits_per_s}bit"


def check_tools() -> None:
    """Usage error, before anything is built, where the host cannot shape a link."""
    require("--link-rate", ("tc", "nsenter"), "iproute2 util-linux",
            "tc in a container's network namespace")


def shape_egress(pid: int | None, rate: LinkRate, device: str = "eth0") -> None:
    """Limit what `device` sends to `rate`: in the network namespace of process `pid` (a
    server container's), or with `pid` None in the host's (a node's veth, bench.host.
    node_engines: what the host sends to that node)."""
    # A burst of 1/100 s of traffic (at least 32 KiB): tbf needs one timer tick's worth
    # (rate / HZ) to reach its rate at all, and more than that only lets bursts through.
    burst = max(32 * 1024, int(rate.bytes_per_s / 100))
    tc = ["tc", "qdisc", "replace", "dev", device, "root", "tbf", "rate",
          f"{rate.bits_per_s}bit", "burst", str(burst), "latency", LATENCY]
    command = tc if pid is None else ["nsenter", "-t", str(pid), "-n", *tc]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise StepFailed(f"cannot shape the link ({' '.join(tc)}): {done.stderr.strip()}")


@dataclass(frozen=True)
class InterfaceBytes:
    received: int
    sent: int

    @property
    def total(self) -> int:
        return self.received + self.sent


def interface_bytes(pid: int, device: str = "eth0") -> InterfaceBytes:
    """The counters of `device` in the network namespace of `pid`, read from the host."""
    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
        name, _, fields = line.partition(":")
        if name.strip() == device:
            columns = fields.split()  # 8 receive columns, then the transmit ones
            return InterfaceBytes(received=int(columns[0]), sent=int(columns[8]))
    raise StepFailed(f"no interface {device} in the network namespace of process {pid}")
