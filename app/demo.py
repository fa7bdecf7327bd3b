"""`python -m app seed-demo`: default departments, a few users of each role with keys, events."""

import json
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.db import Database
from app.directory import service as directory
from app.directory.schemas import ApiKeyCreate, DepartmentCreate, UserCreate
from app.events import intake as events
from app.events.schemas import EventCreate, ReporterIn
from app.policy.service import current_policy, ensure_default_policy
from app.rules.vocabulary import Channel, Role

DEPARTMENTS: Sequence[tuple[str, str]] = (
    ("CS", "Customer service"),
    ("IT", "Information technology"),
    ("OPS", "Operations"),
    ("SALES", "Sales"),
    ("LOG", "Logistics"),
    ("ADM", "Administration"),
    ("SAF", "Safety"),
    ("HR", "Human resources"),
    ("SUP", "Supervision group"),
)

USERS: Sequence[tuple[str, Role, str | None]] = (
    ("Dana Admin", Role.ADMIN, None),
    ("Ivy Intake", Role.INTAKE_AGENT, "CS"),
    ("Hugo Handler", Role.HANDLER, "IT"),
    ("Olga Operations", Role.HANDLER, "OPS"),
    ("Hannah Head", Role.DEPT_HEAD, "IT"),
    ("Sam Supervisor", Role.SUPERVISOR, "SUP"),
    ("Rita Reporter", Role.REPORTER, "SALES"),
    ("Helpdesk Bridge", Role.INTEGRATION, None),
)

EVENTS: Sequence[tuple[str, str, Channel, bool, list[str]]] = (
    ("Checkout returns 500", "Customers cannot pay since 09:12.", Channel.HOTLINE, True, ["IT"]),
    ("Parcel two weeks late", "Order 4711 has not arrived.", Channel.EMAIL, False, ["LOG"]),
    ("Invoices duplicated", "Two invoices share one number.", Channel.WEB, False, ["SALES"]),
    (
        "Handover between shifts fails",
        "Night shift gets no notes.",
        Channel.CHAT_GROUP,
        False,
        ["OPS", "LOG"],
    ),
    (
        "Wet floor in warehouse",
        "Leak near dock 3, a fall was narrowly avoided.",
        Channel.WALK_IN,
        True,
        ["SAF"],
    ),
)


async def seed(session: AsyncSession) -> list[str]:
    """Create the demo data and return printable lines (name, role, token)."""
    await ensure_default_policy(session)
    known = await directory.known_department_codes(session)
    for code, name in DEPARTMENTS:
        if code not in known:
            await directory.create_department(session, DepartmentCreate(code=code, name=name))
    directory.invalidate_department_codes()
    lines = ["name\trole\tdepartment\ttoken"]
    reporter: Principal | None = None
    for name, role, department in USERS:
        email = name.lower().replace(" ", ".") + "@demo.example"
        existing = [u for u in await directory.list_users(session) if u.email == email]
        user = (
            existing[0]
            if existing
            else await directory.create_user(
                session,
                UserCreate(name=name, email=email, department=department, roles=[role]),
                service_account=role is Role.INTEGRATION,
            )
        )
        key = await directory.create_api_key(session, ApiKeyCreate(name="demo", user_id=user.id))
        lines.append(f"{name}\t{role.value}\t{department or '-'}\t{key.token}")
        if role is Role.REPORTER:
            reporter = Principal(
                user_id=user.id,
                api_key_id=key.id,
                name=name,
                roles=frozenset({role}),
                department_id=None,
                department=department,
                service_account=False,
            )
    assert reporter is not None
    policy = await current_policy(session)
    # Intake runs its own statement; here it joins this one transaction through savepoints.
    database = Database(
        async_sessionmaker(
            bind=await session.connection(),
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
    )
    for title, description, channel, urgent, involved in EVENTS:
        answer = await events.intake(
            database,
            EventCreate(
                title=title,
                description=description,
                channel=channel,
                urgent=urgent,
                reporter=ReporterIn(name="Rita Reporter", email="rita.reporter@demo.example"),
                involved_departments=involved,
            ),
            actor=reporter,
            policy=policy,
            now=utcnow(),
            claim=None,
        )
        event = json.loads(answer.body)
        lines.append(f"event\t{event['ref']}\t{event['status']}\t{title}")
    return lines
