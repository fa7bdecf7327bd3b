"""Basic security headers on every response (issue 15, item 7).

Added by `RequestLogMiddleware` to the response start it already rewrites for `X-Request-ID`:
one precomputed tuple appended per response, no layer of its own (intake throughput is
benchmarked, bench/README.md). The set depends on the path only, looked up in one dict:

* the API (the default): a JSON API loads nothing and is framed by nobody, so its policy is
  `default-src 'none'; frame-ancestors 'none'` (OWASP REST security cheat sheet), and its
  answers hold callers' data, so `Cache-Control: no-store`;
* the self-hosted docs pages (`app.core.docs`): scripts, styles, images and the OpenAPI
  document from this origin only, no inline script (Swagger UI's start-up script is a file of
  its own); inline styles, `data:` images and `blob:` workers, which Swagger UI and ReDoc use;
* the docs assets: versioned paths, so cacheable for a year.
"""

from collections.abc import Mapping
from typing import Final

Headers = tuple[tuple[bytes, bytes], ...]

_COMMON: Final[Headers] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)

API_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

API_HEADERS: Final[Headers] = (
    *_COMMON,
    (b"content-security-policy", API_CSP.encode()),
    (b"cache-control", b"no-store"),
)
DOCS_PAGE_HEADERS: Final[Headers] = (
    *_COMMON,
    (b"content-security-policy", DOCS_CSP.encode()),
    (b"cache-control", b"no-cache"),
)
DOCS_ASSET_HEADERS: Final[Headers] = (
    *_COMMON,
    (b"content-security-policy", API_CSP.encode()),
    (b"cache-control", b"public, max-age=31536000, immutable"),
)


class SecurityHeaders:
    """The headers of a response by its path: `API_HEADERS` unless `by_path` names it."""

    __slots__ = ("by_path", "default")

    def __init__(
        self, by_path: Mapping[str, Headers] | None = None, default: Headers = API_HEADERS
    ) -> None:
        self.by_path: dict[str, Headers] = dict(by_path or {})
        self.default = default

    def for_path(self, path: str) -> Headers:
        return self.by_path.get(path, self.default)
