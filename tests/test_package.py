"""The package as installers and tools see it: the wheel holds exactly the modules and data files
of the tree (found, not listed by hand), and the layering contracts of `make lint` hold on the
tree and fail on a deliberate violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


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
    for name in ("pyproject.toml", "README.md"):
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


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_layering_contracts_hold_and_catch_a_violation(tmp_path: Path) -> None:
    copy = tree_copy(tmp_path / "tree")
    clean = lint_imports(copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    schema = copy / "graph" / "schema.py"
    schema.write_text(schema.read_text() + "\nimport kgctl.models.registry  # a deliberate violation\n")
    broken = lint_imports(copy)
    assert broken.returncode != 0
    assert "kgctl.graph.schema -> kgctl.models.registry" in broken.stdout
