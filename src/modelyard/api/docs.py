"""The OpenAPI document and the Swagger UI page that shows it, both served from the package (they
work in a network without internet).

With an API key set, the document lists every model's features, so it needs the key like every
other endpoint but the probes. The page itself loads without it: it asks for the key, keeps it for
the browser tab (sessionStorage), and sends it with every request it makes, the document's
included. A key is only ever read from the Authorization or X-API-Key header, never from a URL.
"""

import json

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from modelyard.api.deps import Authorized
from modelyard.config import Settings

STATIC = "/static-offline-docs"
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - Swagger UI</title>
<link rel="icon" href="{static}/favicon.png">
<link rel="stylesheet" href="{static}/swagger-ui.css">
<style>
  #key {{ font-family: sans-serif; margin: 2em auto; max-width: 40em; }}
  #key input {{ width: 28em; padding: .4em; }}
</style>
</head>
<body>
<form id="key" hidden>
  <p>This API needs its key (<code>MODELYARD_API_KEY</code>, in the stack's <code>.env</code>).
  It is kept for this browser tab only and sent as <code>Authorization: Bearer</code>.</p>
  <input id="key-value" type="password" autocomplete="off" placeholder="API key" required>
  <button type="submit">Show the API</button>
  <p id="key-refused" hidden>That key was refused: try again.</p>
</form>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script>
const needsKey = {needs_key};
const form = document.getElementById("key");
function show(key) {{
  SwaggerUIBundle({{
    url: {openapi_url},
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    requestInterceptor: (request) => {{
      if (key) request.headers["Authorization"] = "Bearer " + key;
      return request;
    }},
  }});
}}
async function start() {{
  const key = sessionStorage.getItem("modelyard-api-key");
  if (!needsKey) return show(null);
  if (key) {{
    const answer = await fetch({openapi_url}, {{headers: {{Authorization: "Bearer " + key}}}});
    if (answer.ok) return show(key);
    sessionStorage.removeItem("modelyard-api-key");
    document.getElementById("key-refused").hidden = false;
  }}
  form.hidden = false;
}}
form.addEventListener("submit", (event) => {{
  event.preventDefault();
  sessionStorage.setItem("modelyard-api-key", document.getElementById("key-value").value);
  form.hidden = true;
  start();
}});
start();
</script>
</body>
</html>
"""


def install(app: FastAPI, settings: Settings) -> None:
    """The document at /openapi.json behind the key (instead of FastAPI's open one), and the page
    at /docs (the app is made without FastAPI's)."""
    assert app.openapi_url is not None
    url = app.openapi_url
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != url]
    page = PAGE.format(
        title=app.title,
        static=STATIC,
        openapi_url=json.dumps(url),
        needs_key=json.dumps(settings.api_key is not None),
    )

    @app.get(url, include_in_schema=False, dependencies=[Authorized])
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page)
