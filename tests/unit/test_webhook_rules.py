"""Who manages webhook endpoints (R6.1, R7.1): `rules.webhooks.endpoint_scope`."""

import pytest

from app.rules.vocabulary import Role
from app.rules.webhooks import EndpointScope, endpoint_scope


@pytest.mark.parametrize(
    ("roles", "scope"),
    [
        ({Role.ADMIN}, EndpointScope.EVERYONES),
        ({Role.ADMIN, Role.INTEGRATION}, EndpointScope.EVERYONES),
        ({Role.INTEGRATION}, EndpointScope.OWN),
        ({Role.SUPERVISOR}, EndpointScope.NONE),
        ({Role.HANDLER, Role.DEPT_HEAD}, EndpointScope.NONE),
        (set(), EndpointScope.NONE),
    ],
)
def test_admins_manage_every_endpoint_integrations_their_own(
    roles: set[Role], scope: EndpointScope
) -> None:
    assert endpoint_scope(frozenset(roles)) is scope
