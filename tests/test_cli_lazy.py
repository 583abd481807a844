"""The command line answers at once: `import kgctl.cli`, `kgctl --help`, `kgctl query --help`,
`kgctl db status --help` and `kgctl browser --help` import none of torch, PyTorch Geometric,
RDKit or anndata (asserted by module list in a fresh interpreter, never by time); commands load
when used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kgctl.cli.lazy import LAZY, first_line, load

HEAVY = ("torch", "torch_geometric", "rdkit", "anndata")
PROBE = """
import json, sys
from click.testing import CliRunner
from kgctl.cli import cli
args = json.loads(sys.argv[1])
if args:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
print(json.dumps([m for m in {heavy} if m in sys.modules]))
"""


def heavy_after(*args: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after importing the CLI and running `args`."""
    code = PROBE.format(heavy=repr(HEAVY))
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args))], capture_output=True, text=True, check=True, timeout=300
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [(), ("--help",), ("query", "--help"), ("db", "status", "--help"), ("browser", "--help")],
)
def test_light_commands_import_no_heavy_module(args: tuple[str, ...]) -> None:
    assert heavy_after(*args) == []


def test_a_command_that_computes_loads_its_modules() -> None:
    assert "torch" in heavy_after("train", "cal", "--help")  # the check above can fail


@pytest.mark.parametrize("name", sorted(LAZY))
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    """`kgctl --help` shows LAZY's line without importing: it must be the command's own."""
    command = load(name)
    assert command.name == name and LAZY[name][1] == first_line(command)
