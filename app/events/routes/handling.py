"""Plan, steps, notes and resolution endpoints (R3.3, R6)."""

from app.events import reading
from app.events.routes.deps import change, event_router, read
from app.events.stages import handling

router = event_router(
    "handling",
    change("PUT", "/{event_id}/plan", handling.put_plan),
    change("PATCH", "/{event_id}/steps/{step_id}", handling.update_step),
    change("POST", "/{event_id}/notes", handling.add_note, status_code=201),
    read("/{event_id}/notes", reading.list_notes),
    change("POST", "/{event_id}/resolution", handling.resolve_event),
)
