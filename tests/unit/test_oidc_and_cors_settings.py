"""Settings of sign-in and CORS (issue 16 items 1 and 2): off unless configured, and a
configuration that would weaken the token checks is refused at start-up."""

from typing import Any

import pytest

from app.core.config import Settings
from app.core.cors import cors_options
from app.core.oidc import OidcVerifier

ISSUER = "https://login.example.com/realms/acme"


def _settings(**values: Any) -> Settings:
    return Settings(DATABASE_URL="postgresql://unused/unused", **values)


def test_oidc_is_off_without_an_issuer() -> None:
    assert OidcVerifier.from_settings(_settings()) is None


def test_oidc_needs_an_audience() -> None:
    with pytest.raises(ValueError, match="OIDC_AUDIENCE"):
        OidcVerifier.from_settings(_settings(OIDC_ISSUER=ISSUER))


@pytest.mark.parametrize("algorithms", ["HS256", "RS256,none", "", " , "])
def test_oidc_refuses_symmetric_or_no_algorithms(algorithms: str) -> None:
    with pytest.raises(ValueError, match="OIDC_ALGORITHMS"):
        OidcVerifier.from_settings(
            _settings(OIDC_ISSUER=ISSUER, OIDC_AUDIENCE="api", OIDC_ALGORITHMS=algorithms)
        )


def test_oidc_settings_are_read() -> None:
    verifier = OidcVerifier.from_settings(
        _settings(
            OIDC_ISSUER=ISSUER,
            OIDC_AUDIENCE="api",
            OIDC_ALGORITHMS="ES256, RS256",
            OIDC_USER_CLAIM="email",
            OIDC_AUTO_PROVISION="true",
        )
    )
    assert verifier is not None
    assert verifier.algorithms == ("ES256", "RS256")
    assert verifier.user_claim == "email"
    assert verifier.auto_provision is True
    assert verifier.jwks_url == ""  # from the discovery document, at the first fetch


def test_cors_is_off_by_default_and_reads_a_comma_separated_list() -> None:
    assert cors_options(_settings()) is None
    assert cors_options(_settings(CORS_ALLOW_ORIGINS=" , ")) is None
    options = cors_options(
        _settings(CORS_ALLOW_ORIGINS="https://a.example.com/, https://b.example.com")
    )
    assert options is not None
    assert options["allow_origins"] == ["https://a.example.com", "https://b.example.com"]
    assert options["allow_credentials"] is False
