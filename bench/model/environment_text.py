"""What `python -m bench model --inspect` prints: the model's environment, read from its
pickle without running it (bench.model.pickle_needs), a line per field."""

from __future__ import annotations

from pathlib import Path

from bench.progress import Progress


def print_environment(path: Path, progress: Progress, model_code: Path | None = None,
                      requirements: Path | None = None) -> int:
    """`bench model --inspect`: what the model's pickle needs and the environment it is
    served in (resolved: its wheels are downloaded if it is its own), a line each; exit
    status 0."""
    from bench.host.paths import cache_dir
    from bench.model.hashing import cached_sha256
    from bench.model.source import served_environment

    env = served_environment(path, cached_sha256(path, cache_dir()), cache_dir(), progress,
                             model_code, requirements)

    def versions(found: dict[str, str | None]) -> str:
        return ", ".join(f"{d} {v or '(not installed)'}" for d, v in sorted(found.items())) or "-"

    for label, value in (("modules", ", ".join(env["modules"])),
                         ("needs", ", ".join(env["distributions"])),
                         ("saved with", versions(env["saved_with"])),
                         ("served with", versions(env["served"])),
                         ("differs", ", ".join(env["differs"]) or "-"),
                         ("model code", ", ".join(env["model_code"]) or "-"),
                         ("missing", ", ".join(env["missing"]) or "-"),
                         ("environment", "; ".join(env["serving"]["changes"])
                          or "the runtime's own pins (docker/requirements.txt)")):
        print(f"{label + ':':<13}{value}")
    return 0
