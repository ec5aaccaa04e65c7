"""Why the ledger refuses a command. Messages are written for the clerk who typed it."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every refusal by the ledger's rules (exit code 1 at the CLI)."""


class NotFound(LedgerError):
    """An unknown community, resident, provider or record."""


class AlreadyExists(LedgerError):
    """A code or record id that is already taken."""


class NotActive(LedgerError):
    """A resident, provider or record that exists but cannot be used at that date."""


class RuleViolation(LedgerError):
    """Any other rule: a date before the community existed, a correction that changes nothing."""


class PeriodClosed(LedgerError):
    """A change dated inside a closed period (结账) of the community's unit."""
