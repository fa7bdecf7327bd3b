"""`/docs` (Swagger UI) and `/redoc` served offline by the service itself (issue 15, item 2).

FastAPI's own pages load Swagger UI, ReDoc and Google's web fonts from CDNs, so they are blank
on a network without internet. Here every asset comes from the `fastapi-offline` package,
served under a path that carries the package's version (so browsers may cache it for good),
with no web fonts and no inline script: Swagger UI's start-up script is an asset of its own
that reads the document's URL from the page, so the pages' Content-Security-Policy allows
scripts from this origin only (`app.core.security_headers`). The one outside address the
bundles would load on their own, the logo of ReDoc's "API docs by Redocly" footer (no option
turns it off), is replaced in the served copy by an empty image, so a browser asks no other
host for anything. The Authorize button takes a bearer token (an API key) for the document's
bearer security scheme; it is kept in the page only (`persistAuthorization` off: no key in the
browser's storage).
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib.metadata import version
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from app.core.security_headers import DOCS_ASSET_HEADERS, DOCS_PAGE_HEADERS, Headers

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = f"/docs/assets/{version('fastapi-offline')}/"

SWAGGER_INIT = """"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  });
})();
"""


EMPTY_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


@dataclass(frozen=True, slots=True)
class Asset:
    media_type: str
    package_file: str | None = None  # a file of fastapi_offline/static, else `text`
    text: str = ""
    replace: tuple[tuple[bytes, bytes], ...] = ()  # (old, new) in the package's file

    def content(self) -> bytes:
        if self.package_file is None:
            return self.text.encode()
        return _package_file(self.package_file, self.replace)


ASSETS: Mapping[str, Asset] = {
    "swagger-ui-bundle.js": Asset("text/javascript", "swagger-ui-bundle.js"),
    "swagger-ui.css": Asset("text/css", "swagger-ui.css"),
    "swagger-init.js": Asset("text/javascript", text=SWAGGER_INIT),
    "redoc.standalone.js": Asset(
        "text/javascript",
        "redoc.standalone.js",
        replace=((b"https://cdn.redoc.ly/redoc/logo-mini.svg", EMPTY_IMAGE),),
    ),
    "favicon.png": Asset("image/png", "favicon.png"),
}


@cache
def _package_file(name: str, replace: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """Read once, on first use (2.7 MB in all), not at start-up."""
    content = (files("fastapi_offline") / "static" / name).read_bytes()
    for old, new in replace:
        content = content.replace(old, new)
    return content


def _asset(name: str) -> str:
    return ASSETS_PATH + name


def _html(title: str, head: str, body: str) -> str:
    """A docs page: only this origin's assets, no inline script (the pages' CSP)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
{head}<link rel="icon" type="image/png" href="{_asset("favicon.png")}">
</head>
<body>
{body}
</body>
</html>
"""


def swagger_page(title: str, openapi_url: str) -> str:
    return _html(
        f"{title} - Swagger UI",
        f'<link rel="stylesheet" href="{_asset("swagger-ui.css")}">\n',
        f'<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>\n'
        f'<script src="{_asset("swagger-ui-bundle.js")}"></script>\n'
        f'<script src="{_asset("swagger-init.js")}"></script>',
    )


def redoc_page(title: str, openapi_url: str) -> str:
    url = escape(openapi_url)
    return _html(
        f"{title} - ReDoc",
        "",
        f"<noscript>ReDoc needs JavaScript; the document itself is at {url}.</noscript>\n"
        f'<redoc spec-url="{url}"></redoc>\n'
        f'<script src="{_asset("redoc.standalone.js")}"></script>',
    )


def _page(
    render: Callable[[str, str], str], title: str, openapi_url: str
) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(render(title, root + openapi_url))

    return page


def _asset_route(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    async def serve(_request: Request) -> Response:
        return Response(asset.content(), media_type=asset.media_type)

    return serve


def install_docs(app: FastAPI) -> dict[str, Headers]:
    """Add `/docs`, `/redoc` and their assets to `app` (built with `docs_url=None,
    redoc_url=None`); returns the security headers of each path, for `RequestLogMiddleware`."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.add_route(
        DOCS_PATH, _page(swagger_page, app.title, openapi_url), ["GET"], include_in_schema=False
    )
    app.add_route(
        REDOC_PATH, _page(redoc_page, app.title, openapi_url), ["GET"], include_in_schema=False
    )
    headers: dict[str, Headers] = {DOCS_PATH: DOCS_PAGE_HEADERS, REDOC_PATH: DOCS_PAGE_HEADERS}
    for name, asset in ASSETS.items():
        app.add_route(_asset(name), _asset_route(asset), ["GET"], include_in_schema=False)
        headers[_asset(name)] = DOCS_ASSET_HEADERS
    return headers
