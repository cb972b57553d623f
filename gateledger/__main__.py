"""`python -m gateledger` runs the `ledger` command line."""

from gateledger.cli.main import main

main()
