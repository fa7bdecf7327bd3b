"""Bearer JWTs of the company's identity provider (issue 16 item 1; product.md section 4:
"OIDC bearer tokens beside API keys").

A token is checked with PyJWT against the provider's key set (JWKS): its algorithm must be one
of those configured (`OIDC_ALGORITHMS`, never `none` nor a symmetric one: the key set's public
keys are no secrets) and the one its key was published for; issuer, audience, expiry and
not-before are checked, `sub` is required. Anything wrong is `Unauthorized` (401), never a 500.

The key set is fetched with httpx (PyJWT's own JWKS client blocks the event loop), with a
bounded timeout, and kept on the verifier:

* a request waits for a fetch only when there is no key set yet, or when the token names a key
  id the set does not hold (the provider rotated its keys); such a refresh happens at most once
  per `OIDC_JWKS_MIN_REFRESH_SECONDS`, so tokens with made-up key ids cannot make the service
  hammer the provider;
* once the set is older than `OIDC_JWKS_CACHE_SECONDS` it is refreshed in the background while
  requests go on with the keys they have;
* concurrent requests share one fetch.

Who the token's holder is in the directory is not decided here: `app.core.auth` maps the
verified `Identity` to a caller through the directory's repository.
"""

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import jwt
import structlog

from app.core.config import Settings
from app.core.errors import Unauthorized

FETCH_TIMEOUT: Final = httpx.Timeout(5.0)
MAX_TOKEN_LENGTH: Final = 8192
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
# The claims a token must carry; `nbf` and `iat` are checked when present.
REQUIRED_CLAIMS: Final = ["exp", "iss", "aud", "sub"]
LEEWAY_SECONDS: Final = 30  # clock skew between the provider and this service

log = structlog.get_logger(__name__)


def looks_like_jwt(token: str) -> bool:
    """Cheap shape test (three dot-separated parts) before any decoding."""
    return token.count(".") == 2 and len(token) <= MAX_TOKEN_LENGTH


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified token: its subject, its claims, and when it expires (epoch seconds)."""

    subject: str
    claims: Mapping[str, Any]
    expires_at: float

    def claim(self, name: str) -> str | None:
        """A string claim (None when absent or not a non-empty string)."""
        value = self.claims.get(name)
        return value if isinstance(value, str) and value else None

    @property
    def verified_email(self) -> str | None:
        """The `email` claim when the provider says it is verified (`email_verified: true`)."""
        if self.claims.get("email_verified") is not True:
            return None
        return self.claim("email")


@dataclass(slots=True)
class _KeySet:
    keys: dict[str | None, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = float("-inf")  # time.monotonic() of the last fetch attempt
    loaded: bool = False


class FetchFailed(Exception):
    """The key set (or the discovery document) could not be fetched or read."""


@dataclass(kw_only=True, eq=False)
class OidcVerifier:
    """Verifies bearer JWTs against one issuer's key set (see the module)."""

    issuer: str
    audience: str
    jwks_url: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    user_claim: str = "sub"
    auto_provision: bool = False
    cache_seconds: float = 300.0
    min_refresh_seconds: float = 30.0
    _set: _KeySet = field(default_factory=_KeySet, init=False, repr=False)
    _fetching: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("OIDC needs both OIDC_ISSUER and OIDC_AUDIENCE")
        unsafe = {a for a in self.algorithms if a.lower() == "none" or a.upper().startswith("HS")}
        if unsafe or not self.algorithms:
            raise ValueError(f"OIDC_ALGORITHMS must name asymmetric algorithms, not {unsafe}")

    @classmethod
    def from_settings(cls, settings: Settings) -> "OidcVerifier | None":
        """The verifier the settings describe; None when OIDC is not configured."""
        if not settings.oidc_issuer:
            return None
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            algorithms=tuple(a.strip() for a in settings.oidc_algorithms.split(",") if a.strip()),
            user_claim=settings.oidc_user_claim,
            auto_provision=settings.oidc_auto_provision,
            cache_seconds=settings.oidc_jwks_cache_seconds,
            min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
        )

    async def verify(self, token: str) -> Identity:
        """The token's identity; `Unauthorized` for anything but a valid token of the issuer
        for this audience."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("Malformed bearer token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise Unauthorized("Token algorithm not accepted")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("Malformed bearer token")
        key = await self._key(kid)
        if key is None:
            raise Unauthorized("Token signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS, "verify_sub": True},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthorized(f"Invalid bearer token: {type(exc).__name__}") from None
        subject, expires = claims.get("sub"), claims.get("exp")
        if not isinstance(subject, str) or not subject or not isinstance(expires, int | float):
            raise Unauthorized("Invalid bearer token")
        return Identity(subject, claims, float(expires))

    # ---- the key set -------------------------------------------------------------------

    async def _key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for `kid`: from the set held, else after a (rate-limited) fetch."""
        refreshed = False
        if not self._set.loaded:
            await self._refresh()
            refreshed = True
        elif time.monotonic() - self._set.fetched_at > self.cache_seconds:
            self._start_fetch()  # in the background: this request goes on with these keys
        key = self._set.keys.get(kid)
        if key is None and not refreshed:
            await self._refresh()  # a key id not seen: the provider may have rotated its keys
            key = self._set.keys.get(kid)
        return key

    async def _refresh(self) -> None:
        """Wait for the fetch under way, or start one unless the last began too recently."""
        if self._fetching is None or self._fetching.done():
            if time.monotonic() - self._set.fetched_at < self.min_refresh_seconds:
                return
            self._fetching = asyncio.create_task(self._fetch())
        # Shielded: a request that gives up does not cancel the fetch others wait for.
        await asyncio.shield(self._fetching)

    def _start_fetch(self) -> None:
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.create_task(self._fetch())

    async def _fetch(self) -> None:
        """Fetch the key set; on failure keep the keys held (logged, never raised)."""
        self._set.fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http:
                url = self.jwks_url or await self._discover(http)
                keys = _usable_keys(await _get_json(http, url), self.algorithms)
        except FetchFailed as exc:
            log.warning("oidc_jwks_fetch_failed", reason=str(exc))
            return
        self.jwks_url = url
        self._set = _KeySet(keys, self._set.fetched_at, loaded=True)

    async def _discover(self, http: httpx.AsyncClient) -> str:
        """The `jwks_uri` of the issuer's discovery document (OpenID Connect Discovery 1.0)."""
        document = await _get_json(http, self.issuer.rstrip("/") + DISCOVERY_PATH)
        if document.get("issuer") != self.issuer:
            raise FetchFailed("the discovery document names another issuer")
        url = document.get("jwks_uri")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise FetchFailed("the discovery document has no jwks_uri")
        return url


async def _get_json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await http.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise FetchFailed(f"{url}: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise FetchFailed(f"{url}: not a JSON object")
    return document


def _usable_keys(document: Mapping[str, Any], algorithms: tuple[str, ...]) -> dict[str | None, Any]:
    """The signing keys of a JWKS whose algorithm is allowed, by key id; others are skipped."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise FetchFailed("the key set has no keys")
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in algorithms:
            kid = entry.get("kid")
            keys[kid if isinstance(kid, str) else None] = key
    return keys
