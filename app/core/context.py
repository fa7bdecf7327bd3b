"""What a request's work is done with (issue 11 item 3): the request's session, the caller and
the moment, as one `Annotated` dependency, so that a route declares only its own parameters
and a service receives one argument for all three."""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import CurrentPrincipal, Principal
from app.core.clock import utcnow
from app.core.db import SessionDep


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestContext:
    """The request's session (one transaction, committed by the session dependency), the
    caller, the moment the request is served at, and for a conditional change the `If-Match`
    header it was sent with (`app.core.preconditions`)."""

    session: AsyncSession
    actor: Principal
    now: datetime
    if_match: str | None = None

    def matching(self, if_match: str | None) -> "RequestContext":
        """The same context for a change conditional on `If-Match`."""
        return replace(self, if_match=if_match)


async def request_context(session: SessionDep, actor: CurrentPrincipal) -> RequestContext:
    return RequestContext(session=session, actor=actor, now=utcnow())


ContextDep = Annotated[RequestContext, Depends(request_context)]
