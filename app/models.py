"""Import every model module so Base.metadata knows all tables (Alembic, tests)."""


def load_all() -> None:
    import app.core.idempotency_models
    import app.directory.models
    import app.events.models
    import app.outbox.models
    import app.policy.models
    import app.reporting.models
    import app.runner.models
    import app.supervision.models
    import app.webhooks.models  # noqa: F401
