"""`python -m kgctl.cli`: the same as the `kgctl` command."""

from kgctl.cli import main

main()
