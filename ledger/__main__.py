"""`python -m ledger` runs the command line."""

from ledger.cli.main import main

main()
