"""Who manages webhook endpoints, the signed messages that keep the systems departments work
in told of every event (R6.1, R7.1): admins manage every endpoint, an integration account its
own, nobody else any."""

from collections.abc import Collection
from enum import StrEnum

from app.rules.vocabulary import Role


class EndpointScope(StrEnum):
    """Whose endpoints a caller manages."""

    EVERYONES = "everyones"
    OWN = "own"
    NONE = "none"


def endpoint_scope(roles: Collection[Role]) -> EndpointScope:
    """R6.1: whose endpoints `roles` manage (an admin who is also an integration: all)."""
    if Role.ADMIN in roles:
        return EndpointScope.EVERYONES
    if Role.INTEGRATION in roles:
        return EndpointScope.OWN
    return EndpointScope.NONE
