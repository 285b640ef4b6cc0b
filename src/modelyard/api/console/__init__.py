"""The web console at /ui: static pages, served by the API, that run in the browser on the public
REST API alone (what they show, a client could fetch).

The pages load without a key, since a browser navigating cannot send one; every call they make to
the API sends it. /ui/settings.json tells the pages whether to ask for one (as /docs' page says it),
so that a first visit asks before it calls, instead of being refused.

A strict Content-Security-Policy keeps the pages to this origin's own files: no inline script or
style, nothing fetched from elsewhere; and names that come from pickles are only ever set as text
(static/dom.js).
"""

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from modelyard.config import Settings

STATIC = Path(__file__).parent / "static"
PATH = "/ui"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def install(app: FastAPI, settings: Settings) -> None:
    key_required = settings.api_key is not None

    async def console_settings(_: Request) -> Response:
        return JSONResponse({"key_required": key_required}, headers=HEADERS)

    app.add_route(f"{PATH}/settings.json", console_settings, include_in_schema=False)
    app.mount(PATH, ConsoleFiles(directory=STATIC, html=True), name="console")
