"""The command line as a boundary: text that cannot be text is refused where it enters.

Every argument and option of every command (walked from the root group once all
command modules are registered, so commands added later are covered) gets a check
that runs after click converts the value:

- a NUL character is refused everywhere: no file name, database value or message
  can carry one (PostgreSQL refuses it in text, the OS in paths);
- a lone surrogate — what Python makes of argv or environment bytes that are not
  UTF-8 — is refused in text values (codes, names, filters, dates: nothing can
  store, query or print them), but allowed in file names, which on Linux may be
  any bytes (a GBK-named file unpacked from a zip).

The error is click's usage error (exit 2) naming the parameter, with the value
escaped, in one line. Path types are checked before click converts them (click.Path
calls os.stat, which raises ValueError for a NUL).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import click

from commands.messages import shown

Callback = Callable[[click.Context, click.Parameter, Any], Any]


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def problem(value: Any, *, is_path: bool) -> str | None:
    """Why a converted value cannot be used, or None."""
    if isinstance(value, (tuple, list)):
        for item in value:
            found = problem(item, is_path=is_path)
            if found:
                return found
        return None
    if isinstance(value, PurePath):
        value = os.fspath(value)
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return f"{shown(value)} contains a NUL character"
    if not is_path and _has_surrogate(value):
        return f"{shown(value)} is not valid UTF-8 text"
    if is_path:
        try:  # bytes that are not UTF-8 arrive as \udc80-\udcff and encode back; other surrogates cannot
            os.fsencode(value)
        except UnicodeEncodeError:
            return f"{shown(value)} is not a file name this system can use"
    return None


def _guarded(callback: Callback | None, is_path: bool) -> Callback:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        found = problem(value, is_path=is_path)
        if found:
            raise click.BadParameter(found, ctx=ctx, param=param)
        return callback(ctx, param, value) if callback is not None else value

    check.__taizhang_guard__ = True  # type: ignore[attr-defined]
    return check


class _NulSafe(click.ParamType):
    """Mixed into a path type: click.Path's conversion calls os.stat, which raises ValueError
    (not OSError) for a NUL, so the value is checked before conversion."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        found = problem(value, is_path=True)
        if found:
            self.fail(found, param, ctx)
        return super().convert(value, param, ctx)


_SAFE_TYPES: dict[type, type] = {}


def _nul_safe(kind: click.ParamType) -> None:
    cls = type(kind)
    if issubclass(cls, _NulSafe):
        return
    if cls not in _SAFE_TYPES:
        _SAFE_TYPES[cls] = type(f"NulSafe{cls.__name__}", (_NulSafe, cls), {})
    kind.__class__ = _SAFE_TYPES[cls]  # same instance and settings, checked first


def guard_params(command: click.Command, *, recurse: bool = True) -> None:
    """Install the check on every parameter of `command` and, for a group, of its commands
    (not those with `recurse=False`: the lazy root guards each command as it loads it)."""
    for param in command.params:
        if getattr(param.callback, "__taizhang_guard__", False):
            continue
        is_path = isinstance(param.type, (click.Path, click.File))
        if is_path:
            _nul_safe(param.type)
        param.callback = _guarded(param.callback, is_path)
    if recurse and isinstance(command, click.Group):
        for sub in command.commands.values():
            guard_params(sub)
