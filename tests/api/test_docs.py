"""`/docs` and `/redoc` work offline (issue 15, item 2): every asset the pages load, and the
document Swagger UI and ReDoc read, come from the app itself; nothing names another host."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx

from app.core.docs import ASSETS_PATH

# Attributes whose value the browser (or Swagger UI's start-up script, or ReDoc) loads.
LOADED_ATTRIBUTES = frozenset({"src", "href", "data-openapi-url", "spec-url"})


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value for name, value in attrs if name in LOADED_ATTRIBUTES and value}
        self.urls.extend(v for v in found.values() if v is not None)
        self._in_script = tag == "script" and "src" not in found

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def _references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


async def _fetch_page(client: httpx.AsyncClient, page: str) -> list[httpx.Response]:
    """The page and everything it references, each fetched from the app."""
    response = await client.get(page)
    assert response.status_code == 200, page
    assert response.headers["content-type"].startswith("text/html")
    found = _references(response.text)
    assert found.inline_scripts == 0, "the pages' CSP allows no inline script"
    assert found.urls, page
    fetched = [response]
    for url in found.urls:
        parts = urlsplit(url)
        assert not parts.scheme, f"{page} loads {url} from elsewhere"
        assert not parts.netloc, f"{page} loads {url} from elsewhere"
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        fetched.append(asset)
    return fetched


async def test_docs_and_redoc_load_nothing_from_another_host(client: httpx.AsyncClient) -> None:
    swagger = await _fetch_page(client, "/docs")
    redoc = await _fetch_page(client, "/redoc")
    loaded = {str(r.url.path): r for r in (*swagger, *redoc)}
    assert {
        "/openapi.json",
        f"{ASSETS_PATH}swagger-ui-bundle.js",
        f"{ASSETS_PATH}swagger-ui.css",
        f"{ASSETS_PATH}swagger-init.js",
        f"{ASSETS_PATH}redoc.standalone.js",
        f"{ASSETS_PATH}favicon.png",
    } <= set(loaded)
    for path, response in loaded.items():
        if path.endswith(".js"):
            assert response.headers["content-type"].startswith("text/javascript"), path
    # Swagger UI's own start-up script: the document's URL from the page, no validator badge
    # (it would load an image from the validator's host).
    init = loaded[f"{ASSETS_PATH}swagger-init.js"].text
    assert "data-openapi-url" in init
    assert "validatorUrl: null" in init
    # Styles pull nothing in from elsewhere: no @import, no url(http...) (fonts included).
    css = loaded[f"{ASSETS_PATH}swagger-ui.css"].text
    assert "@import" not in css
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    # ReDoc's footer logo, the one outside address a bundle loads by itself, is emptied.
    assert "cdn.redoc.ly" not in loaded[f"{ASSETS_PATH}redoc.standalone.js"].text
    for page in ("/docs", "/redoc"):
        html = loaded[page].text
        assert "cdn.jsdelivr.net" not in html
        assert "fonts.googleapis.com" not in html


async def test_docs_pages_csp_allows_this_origin_only(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        csp = (await client.get(page)).headers["content-security-policy"]
        directives = {
            name: value.strip()
            for name, _, value in (d.strip().partition(" ") for d in csp.split(";"))
        }
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"  # no inline script, no other host
        assert directives["connect-src"] == "'self'"  # the document, "Try it out"
        assert directives["frame-ancestors"] == "'none'"
        assert "http" not in csp


async def test_docs_authorize_takes_a_bearer_token(client: httpx.AsyncClient) -> None:
    """Swagger UI shows Authorize for the document's security schemes; a bearer scheme takes
    an API key, and the secured operations name it, so "Try it out" sends it."""
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s == s | {"type": "http", "scheme": "bearer"}]
    assert bearer
    me = document["paths"]["/v1/me"]["get"]
    assert any(bearer[0] in requirement for requirement in me["security"])
