"""Close, cancel, reopen and checklist endpoints (product.md section 2)."""

from app.events import reading
from app.events.routes.deps import change, event_router, read
from app.events.stages import closing

router = event_router(
    "closing",
    change("POST", "/{event_id}/close", closing.close_event),
    change("POST", "/{event_id}/cancel", closing.cancel_event),
    change("POST", "/{event_id}/reopen", closing.reopen_event),
    read("/{event_id}/checklist", reading.get_checklist),
)
