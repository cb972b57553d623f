"""Standalone fixed-time-budget GPT trainer (nanochat/autoresearch lineage).

It imports nothing from the rest of the project so anyone can run it alone; its only
output contract is the raw JSONL log described in ``runner.schema``.
"""

from runner._version import __version__

__all__ = ["__version__"]
