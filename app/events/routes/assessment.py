"""Classification and assignment endpoints (R3.2)."""

from app.events.routes.deps import change, event_router
from app.events.stages import assessment

router = event_router(
    "assessment",
    change("POST", "/{event_id}/classification", assessment.classify_event),
    change("POST", "/{event_id}/assignment", assessment.assign_event),
)
