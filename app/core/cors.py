"""CORS for browser apps on other origins (issue 16 item 2; product.md section 1: frontend
teams build their own UI): Starlette's `CORSMiddleware`, on only when `CORS_ALLOW_ORIGINS`
names origins.

Preflights from an allowed origin are answered by the middleware, before routing (so not the
405 an OPTIONS gets otherwise); a request from any other origin gets no CORS headers. The
headers a client sends (bearer token, JSON, `Idempotency-Key`, `If-Match`) are allowed, and
those a script reads from answers are exposed.
"""

from typing import Any, Final

from app.core.config import Settings

ALLOW_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOW_HEADERS: Final = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match", "Accept")
EXPOSE_HEADERS: Final = ("ETag", "Link", "Location", "X-Request-ID", "Idempotent-Replayed")
MAX_AGE_SECONDS: Final = 600


def allowed_origins(settings: Settings) -> list[str]:
    """`CORS_ALLOW_ORIGINS`, comma-separated, as a list (empty: CORS is off)."""
    return [o.strip().rstrip("/") for o in settings.cors_allow_origins.split(",") if o.strip()]


def cors_options(settings: Settings) -> dict[str, Any] | None:
    """The `CORSMiddleware` arguments for the settings; None when no origin is allowed."""
    origins = allowed_origins(settings)
    if not origins:
        return None
    return {
        "allow_origins": origins,
        "allow_methods": ALLOW_METHODS,
        "allow_headers": ALLOW_HEADERS,
        "expose_headers": EXPOSE_HEADERS,
        # Bearer tokens travel in a header, not cookies: no credentialed requests.
        "allow_credentials": False,
        "max_age": MAX_AGE_SECONDS,
    }
