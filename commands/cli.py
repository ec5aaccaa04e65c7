"""The `taizhang` command line: global options, error handling, exit codes.

Exit codes (DESIGN §5): 0 done; 2 malformed input, judged without the store;
1 refused by the store. Every error is one line on stderr naming the field and
the value; a refused or malformed command writes nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from eventsourcing.persistence import PersistenceError

from commands import (
    access,
    cli_accountability,
    cli_actor,
    cli_assess,
    cli_audit_chain,  # noqa: F401  (adds audit verify|keygen|seal|prove|check to the audit group)
    cli_closing,  # noqa: F401  (adds ledger close|reopen to the ledger group)
    cli_community,
    cli_history,  # noqa: F401  (adds audit history to the audit group)
    cli_import,
    cli_ledger,
    cli_people,
    cli_privacy,
    cli_projections,
    cli_service,
    cli_store,
    i18n,
)
from commands.boundary import guard_params
from commands.context import Env
from commands.files import InputProblem, OutputExists, OutputProblem
from commands.messages import one_line
from commands.models import Malformed
from commands.tabular import TabularError
from domain.errors import LedgerError
from infra.crypto import KeyFileError
from infra.store import DEFAULT_DB, BadURL, StoreError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_ENV: Env | None = None  # the running command's environment, for notes printed after success


def _lang_from(args: Sequence[str] | None) -> str:
    argv = list(args if args is not None else sys.argv[1:])
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return i18n.chosen_lang()


class TaizhangGroup(click.Group):
    """A group whose errors are always one line and whose exit codes follow the contract."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        global _ENV
        _ENV = None
        lang = _lang_from(args)
        access.install(self)  # commands added after import time are guarded too

        def fail(message: str) -> None:
            click.echo(i18n.error_line(_one_line(message), lang), err=True)

        code = 0
        try:
            result = super().main(args, prog_name or "taizhang", complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
            if code == 0 and _ENV is not None:
                _ENV.flush_notes()
        except click.exceptions.Exit as e:
            code = e.exit_code
        except click.Abort:
            fail("aborted")
            code = 1
        except click.UsageError as e:
            fail(e.format_message())
            code = 2
        except click.ClickException as e:
            fail(e.format_message())
            code = e.exit_code
        except (Malformed, BadURL, TabularError, InputProblem, OutputProblem) as e:
            fail(str(e))
            code = 2
        except (LedgerError, StoreError, KeyFileError, OutputExists) as e:
            fail(str(e))
            code = 1
        except PersistenceError as e:
            fail("database: " + _one_line(str(e)))
            code = 1
        except KeyboardInterrupt:
            fail("interrupted")
            code = 130
        except Exception as e:  # a bug, not a user mistake: say so in one line
            if os.environ.get("TAIZHANG_DEBUG"):
                raise
            fail(
                f"internal error: {type(e).__name__}: {_one_line(str(e))} "
                "(please report it; set TAIZHANG_DEBUG=1 to see the traceback)"
            )
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _one_line(text: str) -> str:
    return one_line(text)


@click.group(cls=TaizhangGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="taizhang", prog_name="taizhang")
@click.option(
    "--db",
    envvar="TAIZHANG_DB",
    default=DEFAULT_DB,
    show_default=True,
    metavar="URL",
    help="The store: sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB. Env: TAIZHANG_DB.",
)
@click.option("--actor", envvar="TAIZHANG_ACTOR", metavar="ID", help="Who acts; required to write, and by every command once the store has actors. Env: TAIZHANG_ACTOR.")
@click.option(
    "--lang",
    envvar="TAIZHANG_LANG",
    type=click.Choice(["en", "zh"]),
    default=i18n.locale_lang,
    show_default="en; zh when LC_ALL, LC_MESSAGES or LANG is zh_*",
    help="Language of table labels and messages. Env: TAIZHANG_LANG.",
)
@click.option(
    "--key-file",
    envvar="TAIZHANG_KEY_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="The master key file (default: taizhang.key beside a SQLite store). Env: TAIZHANG_KEY_FILE.",
)
@click.pass_context
def cli(ctx: click.Context, db: str, actor: str | None, lang: str, key_file: Path | None) -> None:
    """taizhang 台账 — the service-information ledger of new-type rural communities.

    Clerks record services; supervisors query the ledgers; auditors replay history.
    Run `taizhang init` once, then `taizhang COMMAND -h` for each command.
    """
    global _ENV
    env = Env(db=db, actor=actor, lang=lang, key_file=key_file)
    _ENV = env
    ctx.obj = env
    ctx.call_on_close(env.close)


for _module in (
    cli_store,
    cli_community,
    cli_people,
    cli_service,
    cli_import,
    cli_ledger,
    cli_projections,
    cli_accountability,
    cli_assess,
    cli_actor,
    cli_privacy,
):
    _module.register(cli)

# Last, once every command is registered: NUL and undecodable bytes are refused where they enter.
guard_params(cli)
access.install(cli)  # last: every command registered above (and by imports) is guarded


def main() -> None:
    cli.main(prog_name="taizhang")


if __name__ == "__main__":
    main()
