"""Sign-in for people with OIDC bearer tokens beside API keys (issue 16 item 1; product.md
section 4; app/core/oidc.py).

The identity provider is played by the test: a key pair made here, its key set (JWKS) and the
discovery document served on 127.0.0.1 by a small real HTTP server in a thread. A token the
provider signed for this audience maps to the directory user it names (by `sub`, or by an
e-mail claim) with that user's roles; every other token is a 401 problem, never a 500.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.directory import service as directory
from app.directory.schemas import UserCreate, UserUpdate
from app.rules.vocabulary import Role
from tests.conftest import Actor, build_app, intake_body

AUDIENCE = "closed-loop-events"
PROBLEM = "application/problem+json"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    private: Any
    alg: str

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        public: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return public | {"kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


@dataclass
class Provider:
    """The identity provider: issuer URL, the keys it publishes, and the requests it got."""

    issuer: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    jwks_delay: float = 0.0  # seconds the key set takes to answer

    def token(self, key: SigningKey | None = None, **claims: Any) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "subject-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        } | claims
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})

    def jwks_hits(self) -> int:
        return self.hits.count("/jwks")


@pytest.fixture
def provider() -> Iterator[Provider]:
    """A real HTTP server on 127.0.0.1 serving the discovery document and the key set."""
    state = Provider(keys=[rsa_key("key-1")])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            body: dict[str, Any]
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": state.issuer, "jwks_uri": state.issuer + "/jwks"}
            elif self.path == "/jwks":
                time.sleep(state.jwks_delay)
                body = {"keys": [k.jwk() for k in state.keys]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def _client(
    maker: async_sessionmaker[AsyncSession], provider: Provider, **settings: Any
) -> httpx.AsyncClient:
    app = build_app(maker, OIDC_ISSUER=provider.issuer, OIDC_AUDIENCE=AUDIENCE, **settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def oidc_client(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider
) -> AsyncGenerator[httpx.AsyncClient]:
    async with await _client(session_maker, provider) as client:
        yield client


@pytest.fixture
async def person(session_maker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """A handler of IT whose tokens carry `sub` "subject-1"."""
    async with session_maker() as session:
        user = await directory.create_user(
            session,
            UserCreate(
                name="Li Wei",
                email="li.wei@example.com",
                department="IT",
                roles=[Role.HANDLER, Role.REPORTER],
                oidc_subject="subject-1",
            ),
        )
        await session.commit()
    return user.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _refused(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("unauthorized")


async def test_a_token_maps_to_its_user_and_roles(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    """The JWKS URL comes from the issuer's discovery document (OIDC_JWKS_URL unset)."""
    response = await oidc_client.get("/v1/me", headers=bearer(provider.token()))
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["user"]["id"] == str(person)
    assert set(me["user"]["roles"]) == {"handler", "reporter"}
    assert me["user"]["department"] == "IT"
    assert me["api_key_id"] is None
    assert provider.hits == ["/.well-known/openid-configuration", "/jwks"]
    # Another token of the same key: no second fetch.
    again = await oidc_client.get("/v1/me", headers=bearer(provider.token(jti="2")))
    assert again.status_code == 200
    assert provider.jwks_hits() == 1


async def test_api_keys_keep_working_beside_oidc(
    oidc_client: httpx.AsyncClient, provider: Provider, reporter: Actor
) -> None:
    response = await oidc_client.get("/v1/me", headers=reporter.headers)
    assert response.status_code == 200
    assert response.json()["user"]["id"] == str(reporter.id)
    assert provider.hits == []  # an API key never touches the identity provider


async def test_the_roles_of_the_token_user_decide(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    """A handler may not create users (admin only): the token's user, not the token, decides."""
    del person
    body = {"name": "X", "roles": ["reporter"]}
    response = await oidc_client.post("/v1/users", json=body, headers=bearer(provider.token()))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example.com"},
        {"aud": "another-service"},
        {"exp": int(time.time()) - 600},
        {"nbf": int(time.time()) + 600},
        {"sub": "nobody-we-know"},
    ],
    ids=["wrong-issuer", "wrong-audience", "expired", "not-yet-valid", "unknown-subject"],
)
async def test_bad_claims_are_401(
    oidc_client: httpx.AsyncClient,
    provider: Provider,
    person: uuid.UUID,  # noqa: ARG001 - the user `subject-1` exists
    claims: dict[str, Any],
) -> None:
    await _refused(oidc_client, provider.token(**claims))


async def test_a_token_without_expiry_is_401(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    del person
    now = int(time.time())
    key = provider.keys[0]
    payload = {"iss": provider.issuer, "aud": AUDIENCE, "sub": "subject-1", "iat": now}
    token = jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": key.kid})
    await _refused(oidc_client, token)


async def test_unknown_key_id_is_401(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    """A key the provider never published (same kid as none of its keys)."""
    del person
    await _refused(oidc_client, provider.token(rsa_key("key-never-published")))


async def test_a_token_signed_by_another_key_under_a_known_kid_is_401(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    del person
    forged = rsa_key(provider.keys[0].kid)
    await _refused(oidc_client, provider.token(forged))


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())


async def test_alg_none_is_401(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    del person
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    for alg in ("none", "None", "NONE"):
        await _refused(oidc_client, _unsigned({"alg": alg, "kid": "key-1"}, claims) + ".")


async def test_hs256_with_the_public_key_as_secret_is_401(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    """The classic key-confusion attack: the published public key used as an HMAC secret."""
    del person
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    key = provider.keys[0]
    for secret in (key.public_pem(), json.dumps(key.jwk()).encode()):
        signing_input = _unsigned({"alg": "HS256", "kid": key.kid, "typ": "JWT"}, claims)
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await _refused(oidc_client, signing_input + "." + _b64(signature))


async def test_garbage_tokens_are_401_not_500(oidc_client: httpx.AsyncClient) -> None:
    for token in ("a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 40 + "." + "y" * 10 + ".z"):
        await _refused(oidc_client, token)


async def test_key_rotation_is_picked_up(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider, person: uuid.UUID
) -> None:
    """The provider publishes a new key: a token naming its kid makes the service fetch the
    key set again (a refresh on an unknown key id), and it is accepted."""
    async with await _client(session_maker, provider, OIDC_JWKS_MIN_REFRESH_SECONDS=0) as client:
        assert (await client.get("/v1/me", headers=bearer(provider.token()))).status_code == 200
        new = rsa_key("key-2")
        provider.keys = [new]
        response = await client.get("/v1/me", headers=bearer(provider.token(new, jti="r")))
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == str(person)
        assert provider.jwks_hits() == 2


async def test_refresh_on_unknown_key_id_is_rate_limited(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    """Made-up key ids do not make the service fetch the key set for each request
    (OIDC_JWKS_MIN_REFRESH_SECONDS, 30 s by default)."""
    del person
    assert (await oidc_client.get("/v1/me", headers=bearer(provider.token()))).status_code == 200
    for n in range(5):
        await _refused(oidc_client, provider.token(rsa_key(f"made-up-{n}")))
    assert provider.jwks_hits() == 1


async def test_an_unreachable_key_set_is_401_not_500(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider, person: uuid.UUID
) -> None:
    del person
    # A port nobody listens on (the server of `provider` is not asked).
    dead = "http://127.0.0.1:9/jwks"
    async with await _client(session_maker, provider, OIDC_JWKS_URL=dead) as client:
        await _refused(client, provider.token())
    assert provider.hits == []


async def test_es256_keys_are_accepted(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider, person: uuid.UUID
) -> None:
    key = SigningKey("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256")
    provider.keys.append(key)
    async with await _client(session_maker, provider) as client:
        response = await client.get("/v1/me", headers=bearer(provider.token(key)))
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == str(person)


async def test_an_algorithm_not_configured_is_401(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider, person: uuid.UUID
) -> None:
    """OIDC_ALGORITHMS pins the algorithms: RS256 only refuses an ES256 token."""
    del person
    key = SigningKey("ec-1", ec.generate_private_key(ec.SECP256R1()), "ES256")
    provider.keys.append(key)
    async with await _client(session_maker, provider, OIDC_ALGORITHMS="RS256") as client:
        await _refused(client, provider.token(key))


async def test_a_user_found_by_email_claim(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider, person: uuid.UUID
) -> None:
    """OIDC_USER_CLAIM=email: the verified e-mail address finds the user (any case); an
    address not said to be verified, or another subject's token for a user bound to a subject,
    signs nobody in (no account takeover through a provider account with the same address)."""
    async with await _client(session_maker, provider, OIDC_USER_CLAIM="email") as client:
        token = provider.token(sub="subject-1", email="Li.Wei@example.com", email_verified=True)
        response = await client.get("/v1/me", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == str(person)
        unverified = provider.token(
            sub="subject-1", email="li.wei@example.com", email_verified=False, jti="u"
        )
        await _refused(client, unverified)
        unsaid = provider.token(sub="subject-1", email="li.wei@example.com", jti="n")
        await _refused(client, unsaid)
        another = provider.token(
            sub="other-subject", email="li.wei@example.com", email_verified=True, jti="o"
        )
        await _refused(client, another)


async def test_auto_provisioning_adds_an_unknown_person_as_reporter(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider
) -> None:
    async with await _client(session_maker, provider, OIDC_AUTO_PROVISION="true") as client:
        token = provider.token(
            sub="new-person", name="Zhang San", email="zhang@example.com", email_verified=True
        )
        first = await client.get("/v1/me", headers=bearer(token))
        assert first.status_code == 200, first.text
        user = first.json()["user"]
        assert user["roles"] == ["reporter"]
        assert user["name"] == "Zhang San"
        assert user["email"] == "zhang@example.com"
        assert user["oidc_subject"] == "new-person"
        assert user["service_account"] is False
        again = await client.get("/v1/me", headers=bearer(provider.token(sub="new-person")))
        assert again.json()["user"]["id"] == user["id"]  # found, not provisioned twice


async def test_a_person_signed_in_reports_for_themselves_with_an_idempotency_key(
    oidc_client: httpx.AsyncClient, provider: Provider, person: uuid.UUID
) -> None:
    """Issue 16 items 1 and 3: the person omits `reporter` and is the reporter; a keyed POST
    of a person without an API key is scoped to them, and replays."""
    body = intake_body()
    del body["reporter"]
    headers = bearer(provider.token()) | {"Idempotency-Key": "oidc-intake-1"}
    first = await oidc_client.post("/v1/events", json=body, headers=headers)
    assert first.status_code == 201, first.text
    reporter = first.json()["reporter"]
    assert reporter["user_id"] == str(person)
    assert reporter["name"] == "Li Wei"
    assert reporter["email"] == "li.wei@example.com"
    replay = await oidc_client.post("/v1/events", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"


async def test_an_admin_links_a_user_to_their_oidc_subject(
    oidc_client: httpx.AsyncClient, provider: Provider, admin: Actor
) -> None:
    """`oidc_subject` is set with the directory's user endpoints and is unique (409)."""
    body = {"name": "Chen Jie", "roles": ["supervisor"], "department": "SUP"}
    created = await oidc_client.post("/v1/users", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["oidc_subject"] is None
    token = provider.token(sub="chen-jie")
    await _refused(oidc_client, token)  # not linked yet
    linked = await oidc_client.patch(
        f"/v1/users/{user['id']}", json={"oidc_subject": "chen-jie"}, headers=admin.headers
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["oidc_subject"] == "chen-jie"
    me = await oidc_client.get("/v1/me", headers=bearer(provider.token(sub="chen-jie", jti="2")))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == user["id"]
    assert me.json()["user"]["roles"] == ["supervisor"]
    taken = await oidc_client.post(
        "/v1/users", json={**body, "oidc_subject": "chen-jie"}, headers=admin.headers
    )
    assert taken.status_code == 409


async def test_a_stale_key_set_is_refreshed_in_the_background(
    session_maker: async_sessionmaker[AsyncSession], provider: Provider, person: uuid.UUID
) -> None:
    """After OIDC_JWKS_CACHE_SECONDS the key set is fetched again off the request path: a
    request does not wait for a slow provider."""
    del person
    settings = {"OIDC_JWKS_CACHE_SECONDS": 0.05, "OIDC_JWKS_MIN_REFRESH_SECONDS": 3600}
    async with await _client(session_maker, provider, **settings) as client:
        assert (await client.get("/v1/me", headers=bearer(provider.token()))).status_code == 200
        await asyncio.sleep(0.1)
        provider.jwks_delay = 1.5
        started = time.monotonic()
        response = await client.get("/v1/me", headers=bearer(provider.token(jti="2")))
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0  # answered with the keys held
        for _ in range(100):
            if provider.jwks_hits() == 2:
                break
            await asyncio.sleep(0.05)
        assert provider.jwks_hits() == 2


async def test_a_token_of_an_inactive_user_is_401(
    oidc_client: httpx.AsyncClient,
    provider: Provider,
    person: uuid.UUID,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    async with session_maker() as session:
        await directory.update_user(session, person, UserUpdate(active=False))
        await session.commit()
    await _refused(oidc_client, provider.token())
