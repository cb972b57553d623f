"""The `ledger` command line: the composition root, the only place importing every package."""
