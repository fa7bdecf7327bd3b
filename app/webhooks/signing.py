"""Standard Webhooks signatures (item 2; https://www.standardwebhooks.com, v1).

`webhook-signature` is `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret,
separated by spaces: during a rotation the previous secret signs beside the new one, so a
receiver holding either verifies.
"""

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + base64 of 32 random bytes (shown once)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class Signer:
    """Signs with the given secrets; `standardwebhooks.Webhook` objects are kept per secret
    (each decodes its secret once)."""

    def __init__(self) -> None:
        self._hooks: dict[str, Webhook] = {}

    def _hook(self, secret: str) -> Webhook:
        hook = self._hooks.get(secret)
        if hook is None:
            if len(self._hooks) > 10_000:
                self._hooks.clear()
            hook = self._hooks[secret] = Webhook(secret)
        return hook

    def headers(
        self, message_id: str, at: datetime, body: str, secrets_: Sequence[str]
    ) -> list[tuple[bytes, bytes]]:
        """The three Standard Webhooks headers for `body` sent at `at`, as (name, value)
        bytes, as they go on the wire."""
        signatures = " ".join(self._hook(s).sign(message_id, at, body) for s in secrets_)
        return [
            (b"webhook-id", message_id.encode()),
            (b"webhook-timestamp", str(int(at.timestamp())).encode()),
            (b"webhook-signature", signatures.encode()),
        ]
