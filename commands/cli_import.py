"""`taizhang import communities|residents|providers|services FILE`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from commands import i18n
from commands.context import Env, pass_env
from commands.importer import KINDS, ImportRefused, import_file
from commands.output import render_json
from commands.progress import Progress


@click.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the good rows and skip the bad ones (each still reported).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help='json prints {"added", "existing", "skipped"}.')
@pass_env
def import_(env: Env, kind: str, file: Path, skip_invalid: bool, fmt: str) -> None:
    """Import a CSV or XLSX file of communities, residents, providers or services.

    The header row is found by its names, in English or Chinese, below any title
    rows; a 合计/总计 row at the foot is skipped, so an exported 台账 imports back.
    All-or-nothing: any bad row is reported as `row N: field: problem` and
    nothing is written, unless --skip-invalid. Importing the same file again adds
    nothing. Services without a record id get one derived from their content.

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

    \b
    Example:
      taizhang --actor clerk01 import services 2026年3月服务台账.xlsx
    """
    actor = env.writer()
    service = env.service()
    bars: list[Progress] = []
    columns = i18n.import_terms(kind)  # a row's field named as the clerk's sheet names it

    def stage(label: str) -> Callable[[int, int], None]:
        if bars:
            bars[-1].__exit__(None, None, None)
        bar = Progress(label, 0)
        bars.append(bar)
        return lambda done, total: bar.set(done, total)

    try:
        # NAMES: resident codes revealed by names in the sheet are access-logged (commands/names.py)
        result = import_file(
            service, kind, file, actor, skip_invalid=skip_invalid, progress=stage, log_names=env.log_access
        )
    except ImportRefused as refused:
        for problem in refused.result.problems:
            click.echo(i18n.translate(str(problem), env.lang, terms=columns), err=True)
        click.echo(i18n.error_line(str(refused), env.lang), err=True)
        raise click.exceptions.Exit(refused.exit_code) from None
    finally:
        if bars and bars[-1].enabled:
            bars[-1].__exit__(None, None, None)
    for problem in result.problems:
        click.echo(i18n.translate(f"skipped {problem}", env.lang, terms=columns), err=True)
    if fmt == "json":
        click.echo(render_json(result.counts()))
    else:
        # format_filename: a file name of bytes that are not UTF-8 still prints.
        name = click.format_filename(file.name)
        click.echo(f"{name}: added {result.added}, existing {result.existing}, skipped {result.skipped}")


def register(group: click.Group) -> None:
    group.add_command(import_)
