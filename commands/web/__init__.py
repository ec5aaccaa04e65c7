"""The web door: an ASGI app (FastAPI, Jinja2) over the same services as the CLI; never imports commands.cli."""
