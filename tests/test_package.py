"""The package as installers and tools see it: the wheel holds exactly the modules and data files
of the tree (found, not listed by hand), and every check of `make lint` (rules, format, the
`fmt: skip` ban, the import contracts) holds on the tree and fails on a planted violation."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def package_files(root: Path) -> set[str]:
    """Every file of the `kgctl` package, through the symlinked folders, as wheel paths."""
    found = set()
    for folder, dirs, files in os.walk(root / "kgctl", followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            found.add(str((Path(folder) / name).relative_to(root)))
    return found


def tree_copy(folder: Path) -> Path:
    """The package's files as a fresh clone has them (symlinks kept, no build leftovers)."""
    folder.mkdir()
    for name in ("pyproject.toml", "README.md", "Makefile"):
        shutil.copy(ROOT / name, folder)
    for name in ("kgctl", "graph", "ingest", "models", "queries"):
        shutil.copytree(ROOT / name, folder / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.mark.slow
def test_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    source = tree_copy(tmp_path / "tree")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        timeout=900,
    )
    (wheel,) = tmp_path.glob("kgctl-*.whl")
    names = {n for n in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in n}
    expected = package_files(ROOT)
    assert names == expected, {
        "missing": sorted(expected - names),
        "extra": sorted(names - expected),
    }
    assert {
        "kgctl/graph/pom.xml",
        "kgctl/queries/nearest.cypher",
        "kgctl/models/cal/task.py",
    } <= names


MARKER = "fmt" + ": skip"  # spelled apart, so that this file passes the check it tests
PLANTED = {  # file: (line appended, what `make lint` must say about it)
    "graph/schema.py": ("import kgctl.models.registry", "kgctl.graph.schema -> kgctl.models.registry"),
    "ingest/l1000.py": (
        "import kgctl.ingest.molecules",
        "kgctl.ingest.l1000 is not allowed to import kgctl.ingest.molecules",
    ),
    "models/runs.py": ("import kgctl.testing.fixtures", "kgctl.models is not allowed to import kgctl.testing"),
    "models/cal/config.py": (
        "import kgctl.models.graphsage",
        "kgctl.models.cal is not allowed to import kgctl.models.graphsage",
    ),
    "models/association/data.py": (
        "import kgctl.models.cal",
        "kgctl.models.association is not allowed to import kgctl.models.cal",
    ),
    "models/probing/heads.py": (
        "import kgctl.models.retrieval",
        "kgctl.models.probing is not allowed to import kgctl.models.retrieval",
    ),
    "models/retrieval.py": (
        "import kgctl.models.isoclr",
        "kgctl.models.retrieval is not allowed to import kgctl.models.isoclr",
    ),
    "queries/browser.py": ("from graph import schema", "`graph` is banned"),
    "graph/views.py": (f"X = 1  # {MARKER}", "remove the 'fmt: skip' markers"),
}


def make_lint(root: Path) -> subprocess.CompletedProcess[str]:
    """`make -k lint-checks` (every check of `make lint`, each run even when another fails) on
    `root` with this environment's tools, and `root` first on the import path."""
    return subprocess.run(
        ["make", "-k", "--no-print-directory", "lint-checks", f"BIN={Path(sys.executable).parent}"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_lint_holds_and_catches_a_planted_violation_of_each_check(tmp_path: Path) -> None:
    copy = tree_copy(tmp_path / "tree")
    clean = make_lint(copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    for name, (line, _) in PLANTED.items():
        path = copy / name
        path.write_text(path.read_text() + f"\n{line}  # noqa: E402, F401  (planted)\n")
    broken = make_lint(copy)
    assert broken.returncode != 0
    said = broken.stdout + broken.stderr
    missing = {name: message for name, (_, message) in PLANTED.items() if message not in said}
    assert not missing, said


def test_the_package_has_one_import_root() -> None:
    """`graph.schema is kgctl.graph.schema` cannot be false: the bare top-level names do not import
    in the test session (pytest in importlib mode, no tests/__init__.py; run it as `pytest`, not
    `python -m pytest`, which puts the working folder first on the path), and ruff bans them."""
    import kgctl.graph.schema

    assert kgctl.graph.schema.__name__ == "kgctl.graph.schema"
    for bare in ("graph", "ingest", "models", "queries"):
        assert importlib.util.find_spec(bare) is None, f"`import {bare}` works: a second import root"
