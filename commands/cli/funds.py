"""`taizhang funds …`: the funding ledger (资金台账), from the granting department to the voucher.

The writes (allocate, transfer, spend, reverse, return) are defined here; the reads (ledger,
trace, cost) in commands.cli.funds_reads, attached to this group.
"""

from __future__ import annotations

import click


@click.group("funds")
def funds() -> None:
    """The funding ledger (资金台账): money from each department to the voucher that spent it.

    Amounts are in yuan with up to two decimals (12,000.00 or 1.2万) and are kept exactly, in fen.
    """


def register(root: click.Group) -> None:
    root.add_command(funds)
