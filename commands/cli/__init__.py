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
from typing import TYPE_CHECKING, Any

import click

from commands import help_i18n
from commands.boundary import guard_params
from commands.lang import chosen_lang, locale_lang
from commands.messages import one_line
from infra.store import DEFAULT_DB

if TYPE_CHECKING:
    from commands.context import Env

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_ENV: Env | None = None  # the running command's environment, for notes printed after success


def _lang_from(args: Sequence[str] | None) -> str:
    argv = list(args if args is not None else sys.argv[1:])
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return chosen_lang()


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
        help_i18n.use(lang)  # -h is answered while parsing, before --lang is
        self.guard_loaded()  # commands added after import time are guarded too

        def fail(message: str) -> None:
            from commands import i18n

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
        except KeyboardInterrupt:
            fail("interrupted")
            code = 130
        except Exception as e:
            known = _exit_code_of(e)
            if known is None:  # a bug, not a user mistake: say so in one line
                if os.environ.get("TAIZHANG_DEBUG"):
                    raise
                fail(
                    f"internal error: {type(e).__name__}: {_one_line(str(e))} "
                    "(please report it; set TAIZHANG_DEBUG=1 to see the traceback)"
                )
                code = 1
            else:
                fail(_known_message(e))
                code = known
        help_i18n.use("en")  # a help asked for outside a run (`command.get_help`) is click's own
        if standalone_mode:
            sys.exit(code)
        return code


def _one_line(text: str) -> str:
    return one_line(text)


# The errors a user can cause, by the module that defines them: (module, class, exit code).
# Classified without importing those modules (pydantic, cryptography, eventsourcing are slow to
# import): an exception's class can only exist once its module has been imported.
_KNOWN_ERRORS: tuple[tuple[str, str, int], ...] = (
    ("commands.models", "Malformed", 2),
    ("infra.store", "BadURL", 2),
    ("commands.tabular", "TabularError", 2),
    ("commands.files", "InputProblem", 2),
    ("commands.files", "OutputProblem", 2),
    ("domain.errors", "LedgerError", 1),
    ("infra.store", "StoreError", 1),
    ("infra.crypto", "KeyFileError", 1),
    ("commands.files", "OutputExists", 1),
    ("eventsourcing.persistence", "PersistenceError", 1),
)


def _exit_code_of(error: Exception) -> int | None:
    """The exit code of an error the contract knows (2 malformed, 1 refused); None for a bug."""
    for module, name, code in _KNOWN_ERRORS:
        loaded = sys.modules.get(module)
        cls = getattr(loaded, name, None) if loaded is not None else None
        if cls is not None and isinstance(error, cls):
            return code
    return None


def _known_message(error: Exception) -> str:
    persistence = sys.modules.get("eventsourcing.persistence")
    if persistence is not None and isinstance(error, persistence.PersistenceError):
        return "database: " + _one_line(str(error))
    return str(error)


# Every top-level command: the modules that define it (and add subcommands to it), and its short
# help as `taizhang -h` lists it. The root imports a command's modules only when that command runs
# (or its help is asked for): `taizhang -h` imports none of them. tests/e2e/test_startup.py checks
# this table against the commands themselves, so the listing cannot drift from them.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "init": (("store",), "Create an empty store and its master key file (and, with --admin, its first admin)."),
    "demo": (
        ("store",),
        "Fill an empty store with a Hezhou-like sample: 5 counties, 60 communities, 3 months of services.",
    ),
    "community": (("community",), "Communities (新型农村社区): establish one, list them."),
    "resident": (
        ("people", "privacy"),
        "Residents served by a community (names and birth dates are stored encrypted).",
    ),
    "provider": (
        ("people",),
        "Service providers: party members, cadres, volunteers, grid workers, social workers, staff.",
    ),
    "service": (("service",), "Service records: record, correct, void."),
    "import": (
        ("imports",),
        "Import a CSV or XLSX file of communities, residents, providers, services, allocations or spending.",
    ),
    "ledger": (("ledger", "closing"), "The service-information ledgers (服务信息台账): entries and summaries."),
    "projections": (("projections",), "The ledger views rebuilt from the events: status, rebuild, run."),
    "official": (
        ("accountability",),
        "Officials who answer for units: county and township secretaries, contact-point cadres.",
    ),
    "duty": (
        ("accountability",),
        "Responsibilities (书记负总责, 党员干部联系点): who answers for which unit, from when.",
    ),
    "visit-plan": (
        ("accountability",),
        "Key visits to hardship cases (困难对象重点巡访): how often each must be visited, and by whom.",
    ),
    "pairing": (("accountability",), "Pair a provider with a resident (结对帮扶), or end the pairing."),
    "target": (
        ("accountability",),
        "Targets per unit and period (目标分解督办): set them, and decompose them to the units below.",
    ),
    "supervise": (
        ("accountability",),
        "Supervised items (督办事项): open one for a unit with a due date; resolve it.",
    ),
    "debrief": (("accountability",), "Special debriefings (专项述职) by the officials who answer for a unit."),
    "funds": (
        ("funds", "funds_reads", "funds_cost"),
        "The funding ledger (资金台账): money from each department to the voucher that spent it.",
    ),
    "assess": (("assess",), "Accountability assessment (考核) of townships or counties, scored from the evidence."),
    "visits": (("assess",), "Key visits (重点巡访) as planned and as delivered."),
    "audit": (
        ("assess", "audit_chain", "history", "privacy"),
        "Audits: who answered for what (and, later, the history and its proofs).",
    ),
    "actor": (
        ("actor",),
        "Actors (who may do what, where): admins, clerks, supervisors and auditors, each with a scope.",
    ),
    "serve": (("serve",), "Serve the web pages and the JSON API (/api/v1) over the store, until interrupted."),
    "keys": (("privacy",), "The master key that wraps every data key."),
    "backup": (
        ("privacy",),
        "Copy a SQLite store to FILE, consistently, while clerks keep writing (SQLite's online backup).",
    ),
}


class LazyGroup(TaizhangGroup):
    """The root: a command's modules are imported when it is first looked up, not at start-up.

    `commands` (the dict click and the tests walk) loads every command; `get_command` loads only
    the one asked for; the root's help lists COMMANDS without importing anything.
    """

    context_class = help_i18n.HelpContext  # -h in the language of the run (commands.help_i18n)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loaded: dict[str, click.Command] = {}
        self._imported: set[str] = set()
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        self.load_all()
        return self._loaded

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._loaded = dict(value)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise TypeError("Command has no name.")
        self._loaded[name] = cmd

    def load(self, name: str) -> click.Command | None:
        if name in COMMANDS:  # also when loaded already: another module's register may have added it
            self._import(COMMANDS[name][0])
        return self._loaded.get(name)

    def load_all(self) -> None:
        for modules, _help in COMMANDS.values():
            self._import(modules)

    def _import(self, modules: tuple[str, ...]) -> None:
        import importlib

        todo = [module for module in modules if module not in self._imported]
        if not todo:
            return
        for module in todo:
            self._imported.add(module)
            loaded = importlib.import_module(f"commands.cli.{module}")
            register = getattr(loaded, "register", None)  # some only add subcommands to another's group
            if register is not None:
                register(self)
        for command in self._loaded.values():
            guard_params(command)  # NUL and undecodable bytes are refused where they enter
        self.guard_loaded()

    def guard_loaded(self) -> None:
        """Install the access check on every command loaded so far (commands.access)."""
        if self._loaded:
            from commands import access

            access.install_commands(self._loaded)
            help_i18n.install(self._loaded.values())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.load(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self._loaded))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from COMMANDS (the same text click would take from each command)."""
        names = [n for n in self.list_commands(ctx) if n in COMMANDS or not self._loaded[n].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            loaded = self._loaded.get(name)
            listed = loaded if loaded is not None else click.Command(name, help=COMMANDS[name][1])
            rows.append((name, listed.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="taizhang", prog_name="taizhang")
@click.option(
    "--db",
    envvar="TAIZHANG_DB",
    default=DEFAULT_DB,
    show_default=True,
    metavar="URL",
    help="The store: sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB. Env: TAIZHANG_DB.",
)
@click.option(
    "--actor",
    envvar="TAIZHANG_ACTOR",
    metavar="ID",
    help="Who acts; required to write, and by every command once the store has actors. Env: TAIZHANG_ACTOR.",
)
@click.option(
    "--lang",
    envvar="TAIZHANG_LANG",
    type=click.Choice(["en", "zh"]),
    default=locale_lang,
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
    from commands.context import Env

    env = Env(db=db, actor=actor, lang=lang, key_file=key_file)
    _ENV = env
    ctx.obj = env
    ctx.call_on_close(env.close)


# The root's own options; each command's are guarded when it is loaded (LazyGroup).
guard_params(cli, recurse=False)


def main() -> None:
    cli.main(prog_name="taizhang")


if __name__ == "__main__":
    main()
