"""Review and improvement-action endpoints (R3.5)."""

from app.events import reading
from app.events.routes.deps import change, event_router, read
from app.events.stages import review

router = event_router(
    "review",
    change("PUT", "/{event_id}/review", review.put_review),
    change("POST", "/{event_id}/actions", review.add_action, status_code=201),
    read("/{event_id}/actions", reading.list_actions),
    change("PATCH", "/{event_id}/actions/{action_id}", review.complete_action),
    change("POST", "/{event_id}/actions/{action_id}/verification", review.verify_action),
)
