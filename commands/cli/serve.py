"""`taizhang serve`: the web door (commands/web/) over the configured store."""

from __future__ import annotations

import os

import click

from commands.context import Env, pass_env


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (put nginx with TLS in front for anything but loopback).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes (each keeps the views current and shares the store's sessions).",
)
@pass_env
def serve(env: Env, host: str, port: int, workers: int) -> None:
    """Serve the web pages and the JSON API (/api/v1) over the store, until interrupted.

    Refused on a store without actors: create the first admin and give them a
    password (`actor password`) first. The server keeps the ledger views current
    itself; page reads never take SQLite's write lock.

    \b
    Example:
      taizhang --db sqlite:///taizhang.db serve --port 8000
      taizhang --db postgresql://taizhang@db:5432/taizhang serve --host 127.0.0.1 --workers 4
    """
    from commands.credentials import require_actors

    service = env.service()
    require_actors(service)
    env.close()
    import uvicorn

    os.environ["TAIZHANG_DB"] = env.db
    os.environ["TAIZHANG_KEY_FILE"] = str(env.key_path)
    uvicorn.run(
        "commands.web.app:create_from_environment",  # by name: the CLI never imports the web (nor it the CLI)
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        server_header=False,
        access_log=False,  # uvicorn's access log prints every URL and client: the access log is taizhang's own
    )


def register(group: click.Group) -> None:
    group.add_command(serve)
