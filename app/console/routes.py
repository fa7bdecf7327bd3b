"""`/console/`: the console's files as they are (`static/`), its sign-in configuration, and the
security headers of its pages (a strict Content-Security-Policy: this origin's scripts and
styles only, no inline code)."""

import pathlib
from typing import Annotated, Final
from urllib.parse import urlsplit

from fastapi import FastAPI, Path, Query
from fastapi.responses import FileResponse

from app.core.config import Settings
from app.core.errors import NotFound
from app.core.query import ApiRouter
from app.core.schemas import ResponseModel
from app.core.security_headers import API_CSP, Headers

STATIC: Final = pathlib.Path(__file__).resolve().parent / "static"
PATH: Final = "/console"
DEFAULT_SCOPES: Final = "openid email profile"

_COMMON: Final[Headers] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class OidcClient(ResponseModel):
    issuer: str
    client_id: str
    scopes: str


class ConsoleConfig(ResponseModel):
    """How the console may sign people in: `oidc` null means API keys only."""

    oidc: OidcClient | None


def _oidc(settings: Settings) -> OidcClient | None:
    if not (settings.oidc_issuer and settings.console_oidc_client_id):
        return None
    return OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.console_oidc_client_id,
        scopes=DEFAULT_SCOPES,
    )


def page_csp(settings: Settings) -> str:
    """The console page's policy. It calls this origin's API; with OIDC also the identity
    provider (its discovery document and token endpoint, on the issuer's origin)."""
    connect = "'self'"
    if _oidc(settings) is not None:
        issuer = urlsplit(settings.oidc_issuer)
        connect += f" {issuer.scheme}://{issuer.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def security_headers(settings: Settings) -> dict[str, Headers]:
    """Headers by path for `RequestLogMiddleware`: the page gets the console's policy; every
    file `no-cache` (asked for again on each load: an upgrade never runs from a stale copy)."""
    page: Headers = (
        *_COMMON,
        (b"content-security-policy", page_csp(settings).encode()),
        (b"cache-control", b"no-cache"),
    )
    asset: Headers = (
        *_COMMON,
        (b"content-security-policy", API_CSP.encode()),
        (b"cache-control", b"no-cache"),
    )
    headers = {f"{PATH}/{name}": asset for name in _files()}
    headers.update({f"{PATH}/": page, f"{PATH}/index.html": page})
    return headers


# The identity provider's answer on its way back to `/console/` (RFC 6749 section 4.1.2,
# RFC 9207 `iss`, OIDC session management `session_state`): declared, as every query parameter
# of the service is (unknown ones are a 422).
CallbackParam = Annotated[str | None, Query(max_length=4096)]
MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _files() -> dict[str, pathlib.Path]:
    """Every file the console serves, by its path under `PATH`: the folder read once."""
    return {
        p.relative_to(STATIC).as_posix(): p
        for p in STATIC.rglob("*")
        if p.is_file() and p.suffix in MEDIA_TYPES
    }


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console at `PATH/` (after the API's routes: it is matched last). Plain GET
    routes, so other methods answer 405 with `Allow` like every other path; `PATH` itself
    redirects to `PATH/` (the router's trailing-slash redirect), which relative URLs need."""
    config = ConsoleConfig(oidc=_oidc(settings))
    files = _files()
    router = ApiRouter(prefix=PATH, include_in_schema=False)

    def send(name: str) -> FileResponse:
        path = files.get(name)
        if path is None:
            raise NotFound(f"No console file {name!r}")
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])

    @router.get("/")
    async def console_page(
        code: CallbackParam = None,
        state: CallbackParam = None,
        error: CallbackParam = None,
        error_description: CallbackParam = None,
        error_uri: CallbackParam = None,
        iss: CallbackParam = None,
        session_state: CallbackParam = None,
    ) -> FileResponse:
        # The page's script reads the callback from its own URL (`auth.js`).
        del code, state, error, error_description, error_uri, iss, session_state
        return send("index.html")

    @router.get("/config.json")
    async def console_config() -> ConsoleConfig:
        return config

    @router.get("/{name:path}")
    async def console_file(name: Annotated[str, Path(max_length=200)]) -> FileResponse:
        return send(name)

    app.include_router(router)
