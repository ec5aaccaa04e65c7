"""`taizhang funds ledger|trace|cost`: reading the funding ledger. Attached to the `funds` group."""

from __future__ import annotations

from commands.cli.funds import funds  # noqa: F401  (the group these commands attach to)
