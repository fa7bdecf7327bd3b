"""How the endpoints on one event are declared: each is one row, `change(...)` (run one stage,
`app/events/stages/`) or `read(...)` (one read, `app/events/reading.py`), and `event_router`
makes the routes. The route's parameters are the function's own after its first (path ids,
then the body), its response model the function's return type, its name and description the
function's name and docstring; every change also takes `ChangeDep` (the caller, the policy,
now, the If-Match precondition, the session), every read `ReadDep`."""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Header, Path, Request, Response
from fastapi.params import Depends as DependsParam

from app.core.auth import CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.idempotency import withhold_from_replay
from app.core.preconditions import etag
from app.core.query import ApiRouter
from app.events.reading import ReadContext
from app.events.stages.common import Stage, StageContext, open_stage
from app.policy.service import PolicyDep

P = ParamSpec("P")
T = TypeVar("T")

EventRef = Annotated[
    str, Path(min_length=1, max_length=64, description="Event UUID or its ref (EV-2026-000123)")
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match", max_length=64, description='The event\'s ETag, e.g. "v3"; 412 when stale'
    ),
]

MUTATION_RESPONSES: dict[int | str, dict[str, str]] = {
    403: {"description": "Your role may not do this on this event"},
    404: {"description": "No such event, or you may not see it"},
    409: {
        "description": "A gate is not met (`missing`) or the action is not allowed now (`allowed`)"
    },
    412: {"description": "If-Match names another version"},
    422: {"description": "The request is not valid"},
}
# A read answers 404 for an event the caller may not see, never 403 (product.md section 1).
READ_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "No such event, or you may not see it"}
}


@dataclass(frozen=True, slots=True)
class StageRunner:
    """Runs one stage on the request's event (`stages.common.open_stage`, then the stage's
    own part); the event's version after it goes out as the `ETag`,
    whatever the response shows (the event, or the note, feedback, action, satisfaction or
    survey link it made: review of issue 10, item 7), so the next change can send
    `If-Match` without reading the event again."""

    context: StageContext
    response: Response

    async def __call__(
        self,
        step: Callable[Concatenate[Stage, P], Awaitable[T]],
        id_or_ref: str,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        stage = await open_stage(self.context, id_or_ref)
        result = await step(stage, *args, **kwargs)
        self.response.headers["ETag"] = etag(stage.event.version)
        return result


async def _stage_runner(
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> StageRunner:
    context = StageContext(
        session=session,
        actor=actor,
        policy=policy,
        now=utcnow(),
        if_match=if_match,
        # The configured PUBLIC_BASE_URL, never the request's Host (review of issue 10, 10).
        base_url=getattr(request.app.state, "public_base_url", ""),
    )
    return StageRunner(context, response)


async def _read_context(session: SessionDep, actor: CurrentPrincipal) -> ReadContext:
    return ReadContext(session=session, actor=actor)


ChangeDep = Annotated[StageRunner, Depends(_stage_runner)]
ReadDep = Annotated[ReadContext, Depends(_read_context)]


@dataclass(frozen=True, slots=True)
class EventOp:
    """One endpoint on an event: `method path` runs `run` on it."""

    method: str
    path: str
    run: Callable[..., Awaitable[Any]]
    status_code: int
    dependencies: tuple[DependsParam, ...] = ()


def change(
    method: str,
    path: str,
    step: Callable[..., Awaitable[Any]],
    *,
    status_code: int = 200,
    withhold: bool = False,
) -> EventOp:
    """A change: `step(stage, *path ids, body)` on the locked event (`stages.common`).
    `withhold`: its response carries a secret shown once, never stored for a replay."""
    dependencies = (Depends(withhold_from_replay),) if withhold else ()
    return EventOp(method, path, step, status_code, dependencies)


def read(path: str, reader: Callable[[ReadContext, str], Awaitable[Any]]) -> EventOp:
    """A read: `reader(context, event id or ref)` (`app/events/reading.py`)."""
    return EventOp("GET", path, reader, 200)


def _endpoint(op: EventOp) -> Callable[..., Awaitable[Any]]:
    """The route's endpoint: the event's id or ref, the function's own parameters after its
    first, and the dependency its kind takes."""
    hints = inspect.get_annotations(op.run, eval_str=True)
    is_read = op.method == "GET"
    # A change's own parameters follow the stage; a read takes just the event's id or ref.
    own = [] if is_read else list(inspect.signature(op.run).parameters)[1:]
    kind = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("event_id", kind, annotation=EventRef)]
    parameters += [inspect.Parameter(name, kind, annotation=hints[name]) for name in own]
    endpoint = _read(op) if is_read else _change(op, own)
    dependency = ReadDep if is_read else ChangeDep
    parameters.append(inspect.Parameter("context", kind, annotation=dependency))
    signature = inspect.Signature(parameters, return_annotation=hints["return"])
    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    endpoint.__doc__ = op.run.__doc__
    return endpoint


def _read(op: EventOp) -> Callable[..., Awaitable[Any]]:
    async def endpoint(event_id: str, context: ReadContext) -> Any:
        return await op.run(context, event_id)

    return endpoint


def _change(op: EventOp, own: list[str]) -> Callable[..., Awaitable[Any]]:
    async def endpoint(event_id: str, context: StageRunner, **values: Any) -> Any:
        return await context(op.run, event_id, *(values[name] for name in own))

    return endpoint


def add_event_routes(router: ApiRouter, *ops: EventOp) -> None:
    """The routes of `ops` on `router`, in order."""
    for op in ops:
        router.add_api_route(
            op.path,
            _endpoint(op),
            methods=[op.method],
            name=op.run.__name__,
            status_code=op.status_code,
            dependencies=list(op.dependencies),
            responses=READ_RESPONSES if op.method == "GET" else MUTATION_RESPONSES,
        )


def event_router(tag: str, *ops: EventOp) -> ApiRouter:
    """A router of `ops` under `/v1/events`, tagged `tag`."""
    router = ApiRouter(prefix="/v1/events", tags=[tag])
    add_event_routes(router, *ops)
    return router
