"""`taizhang import communities|residents|providers|services FILE`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from commands import i18n
from commands.context import Env, pass_env
from commands.funds_import import KINDS as FUNDS_KINDS
from commands.importer import KINDS, ImportRefused, ImportResult, SheetOptions, import_file
from commands.models import Malformed, clean_code
from commands.output import render_json
from commands.progress import Progress
from commands.tabular import NO_HEADER


@click.command("import")
@click.argument("kind", type=click.Choice([*KINDS, *FUNDS_KINDS]))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the good rows and skip the bad ones (each still reported).")
@click.option("--community", "community", metavar="CODE", help="The community of every row, for a sheet without a 社区 column.")
@click.option("--year", type=click.IntRange(1900, 2999), metavar="YYYY", help="The year of dates written without one (3月5日, 03-05).")
@click.option("--duration-unit", type=click.Choice(["minutes", "hours"]), help="What a bare number under a duration header that names no unit (时长) means.")
@click.option("--default-time", metavar="HH:MM", help="The time of a service the sheet gives only a date for.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help='json prints {"added", "existing", "skipped"} and what was left out.')
@pass_env
def import_(
    env: Env,
    kind: str,
    file: Path,
    skip_invalid: bool,
    community: str | None,
    year: int | None,
    duration_unit: str | None,
    default_time: str | None,
    fmt: str,
) -> None:
    """Import a CSV or XLSX file of communities, residents, providers, services, allocations or spending.

    The header row is found by its names, in English or Chinese, below any title
    rows; a 合计/总计 row and signature lines (填表人, 审核人, 制表日期, 负责人) at
    the foot and blank rows are skipped and counted, so an exported 台账 imports
    back. A column no field takes is reported as ignored (序号 quietly); the
    headers recognised are listed in commands/headers.toml.
    All-or-nothing: any bad row is reported as `row N: field: problem` and
    nothing is written, unless --skip-invalid. Importing the same file again adds
    nothing. Services without a record id get one derived from their content.

    Durations are read by their unit (45分钟, 1.5小时, 1小时30分, 90min, 1.5h);
    a bare number by the unit its header names (时长(分钟), 时长(小时)), else only
    with --duration-unit. A service needs its time of day: a date alone is
    refused unless --default-time gives one. A village's sheet may leave out the
    社区 column (--community) and the year of its dates (--year).

    \b
    Columns (optional ones may be absent):
      communities: code, name, county, township, village, natural_villages, established_on
                   编码, 名称, 县区, 乡镇, 行政村, 自然村, 成立日期
      residents:   community, code, name, birth_date, gender, categories, grid, household, enrolled_on
                   社区, 编号, 姓名, 出生日期, 性别, 类别, 网格, 户号, 入册日期
      providers:   community, code, name, role, team, registered_on
                   社区, 编号, 姓名, 角色, 队伍, 登记日期
      services:    community, record_id, kind, residents, providers, occurred_at, minutes, place, note, entered_on
                   社区, 记录编号, 服务类型, 服务对象, 服务人员, 服务时间, 时长(分钟), 地点, 备注, 登记日期
                   (and 服务日期 + 服务时间 as two columns; 服务内容 and 备注 both fill the note)
      allocations: department, document, purpose, amount, granted_on, unit
                   资金来源, 文号, 用途, 金额（元）, 下达日期, 拨付单位
      spending:    department, document, community, spent_on, voucher, payee, purpose, amount, records, project, home
                   资金来源, 文号, 社区, 支出日期, 凭证号, 收款人, 摘要, 金额（元）, 服务记录, 项目, 幸福院
                   (a spend names its line by 资金来源 + 文号; amounts as 12,000.00 or 1.2万, exact to the fen)

    \b
    Example:
      taizhang --actor clerk01 import services 2026年3月服务台账.xlsx
      taizhang --actor clerk01 import services 石门村3月.xlsx --community HZ-001 --year 2026 --duration-unit hours
      taizhang --actor sup01 import allocations 2026年资金下达表.xlsx
    """
    options = _options(kind, community, year, duration_unit, default_time)
    actor = env.writer()
    service = env.service()
    _views_current_around_the_save(env, service)
    bars: list[Progress] = []
    columns = i18n.import_terms(kind)  # a row's field named as the clerk's sheet names it

    def stage(label: str) -> Callable[[int, int], None]:
        if bars:
            bars[-1].__exit__(None, None, None)
        bar = Progress(label, 0)
        bars.append(bar)
        return lambda done, total: bar.set(done, total)

    try:
        if kind in FUNDS_KINDS:  # the funding ledger (commands/funds_import.py)
            from commands.funds_import import import_funds

            result = import_funds(service, kind, file, actor, skip_invalid=skip_invalid, community=options.community)
        else:
            # NAMES: resident codes revealed by names in the sheet are access-logged (commands/names.py)
            result = import_file(
                service, kind, file, actor, skip_invalid=skip_invalid, progress=stage, options=options,
                log_names=env.log_access,
            )
    except ImportRefused as refused:
        for problem in refused.result.problems:
            click.echo(i18n.translate(str(problem), env.lang, terms=columns), err=True)
        click.echo(i18n.error_line(str(refused), env.lang), err=True)
        raise click.exceptions.Exit(refused.exit_code) from None
    finally:
        if bars and bars[-1].enabled:
            bars[-1].__exit__(None, None, None)
    if result.added and service.store.backend == "sqlite":
        _catch_up_after(env)
    for problem in result.problems:
        click.echo(i18n.translate(f"skipped {problem}", env.lang, terms=columns), err=True)
    if fmt == "json":
        click.echo(render_json(result.report()))
    else:
        # format_filename: a file name of bytes that are not UTF-8 still prints.
        name = click.format_filename(file.name)
        report = f"{name}: added {result.added}, existing {result.existing}, skipped {result.skipped}"
        click.echo(i18n.translate(report, env.lang))
        for line in _left_out_lines(result, env.lang):
            click.echo(i18n.translate(line, env.lang))


def _options(kind: str, community: str | None, year: int | None, unit: str | None, at: str | None) -> SheetOptions:
    """The sheet options, judged before the store is opened (malformed: exit 2)."""
    if community is not None and kind in ("communities", "allocations"):
        raise Malformed("--community", f"applies to residents, providers, services and spending, not to {kind}")
    for option, value in (("--year", year), ("--duration-unit", unit), ("--default-time", at)):
        if value is not None and kind != "services":
            raise Malformed(option, f"applies to import services only, not to {kind}")
    code = None if community is None else _code(community)
    return SheetOptions(community=code, year=year, duration_unit=unit, default_time=None if at is None else _time(at))


def _code(community: str) -> str:
    try:
        return clean_code(community)
    except ValueError as e:
        raise Malformed("--community", str(e)) from None


def _time(value: str) -> dt.time:
    try:
        return dt.datetime.strptime(value.strip(), "%H:%M").time()
    except ValueError:
        raise Malformed("--default-time", f"expected HH:MM, got {value!r}") from None


def _left_out_lines(result: ImportResult, lang: str) -> list[str]:
    """What the sheet held that was not imported, one line each (text report)."""
    left: dict[str, Any] = result.left_out()
    lines = []
    if "ignored_columns" in left:
        lines.append("ignored columns: " + ", ".join(_column(c, lang) for c in left["ignored_columns"]))
    if "footer_rows_skipped" in left:
        lines.append(f"footer rows skipped: {left['footer_rows_skipped']}")
    if "blank_rows_skipped" in left:
        lines.append(f"blank rows skipped: {left['blank_rows_skipped']}")
    return lines


def _views_current_around_the_save(env: Env, service: Any) -> None:
    """SQLite: right before the import's one long transaction, bring the views to the head of the
    log, so that readers find them current while the import holds the write lock and never need
    it (commands.views; docs/decisions: reads without the write lock)."""
    if service.store.backend != "sqlite":
        return
    from infra.store import StoreError

    checked = service.app.before_write

    def before_write() -> None:
        if checked is not None:
            checked()
        try:
            env.views().settle()
        except StoreError:
            pass  # another writer kept the lock: the import goes on, the views catch up after it

    service.app.before_write = before_write


def _catch_up_after(env: Env) -> None:
    """SQLite: project what the import added, in short batches (readers read between them), so the
    next query need not. The import is saved already: a failure here is a note, not an error."""
    from commands.views import prepared_views
    from infra.store import StoreError

    try:
        prepared_views(env, None)
    except StoreError as e:
        env.warn(f"the import is saved; the ledger views were not brought up to date ({e}): the next query will")


def register(group: click.Group) -> None:
    group.add_command(import_)


def _column(name: str, lang: str) -> str:
    """An ignored column as the report names it: its header as the sheet writes it (never
    translated), or the letter of a column without one."""
    return i18n.translate(name, lang) if name.endswith(NO_HEADER) else name
