from pathlib import Path

from bench.engine import buildkit_context_bytes, read_dockerignore


def test_buildkit_context_bytes_reads_the_last_transfer_line() -> None:
    lines = [
        "#1 transferring dockerfile: 38B done",
        "#5 [internal] load build context",
        "#5 transferring context: 32.77kB 0.3s",
        "#5 transferring context: 64.07MB 0.6s done",
    ]
    assert buildkit_context_bytes(lines) == 64_070_000


def test_dockerignore_comments_and_blanks_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# models\n\ndatos/modelos/*.joblib\n.git/\n")
    assert read_dockerignore(tmp_path) == ["datos/modelos/*.joblib", ".git/"]
    assert read_dockerignore(tmp_path / "nowhere") is None


def test_no_engine_names_the_install_where_dockerd_is_missing() -> None:
    """Found on a fresh Debian machine with only the docker client: `nox -s bench` said to
    start dockerd, which was not there."""
    from bench.engine.connection import no_engine_message

    missing = no_engine_message("ConnectionError", dockerd="")
    assert "apt-get install -y docker.io" in missing and missing.count("\n") == 0
    installed = no_engine_message("ConnectionError", dockerd="/usr/sbin/dockerd")
    assert "apt-get" not in installed and "dockerd > /tmp/dockerd.log" in installed
