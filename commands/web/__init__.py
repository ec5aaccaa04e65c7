"""The web door to taizhang (`taizhang serve`): an ASGI app over the same application services as the CLI.

It never imports commands.cli (nor the CLI it). Its static files (commands/web/static, with vendored
libraries in static/vendor) and templates (commands/web/templates) are package data: the pages work
without internet.
"""
