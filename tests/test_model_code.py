"""What of a --model-code folder goes into the images."""

from __future__ import annotations

from pathlib import Path

from bench.model.model_code import code_digest, files_of, provided_modules


def test_the_images_get_the_code_and_not_dot_files_or_caches(tmp_path: Path) -> None:
    for name, text in {"features.py": "X = 1\n", "pkg/__init__.py": "", "pkg/steps.py": "",
                       "pkg/data.json": "{}", ".env": "AWS_SECRET_ACCESS_KEY=s\n",
                       ".git/config": "[core]\n", "pkg/.secrets/key": "k",
                       "__pycache__/features.cpython-311.pyc": "",
                       "pkg/__pycache__/steps.cpython-311.pyc": ""}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert [p.relative_to(tmp_path).as_posix() for p in files_of(tmp_path)] == [
        "features.py", "pkg/__init__.py", "pkg/data.json", "pkg/steps.py"]
    assert provided_modules(tmp_path) == {"features", "pkg"}
    # A secret that changes does not change what the image is tagged by: it is not in it.
    before = code_digest(tmp_path)
    (tmp_path / ".env").write_text("AWS_SECRET_ACCESS_KEY=t\n")
    assert code_digest(tmp_path) == before
    (tmp_path / "features.py").write_text("X = 2\n")
    assert code_digest(tmp_path) != before
