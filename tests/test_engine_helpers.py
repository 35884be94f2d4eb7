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
