"""Named leases with expiry: who runs a singleton job, and until when (issue 12, item 1)."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class JobLease(Base):
    """At most one runner (`holder`) holds `name` until `expires_at`. A singleton job's lease is
    not given back after a successful run, so its expiry is also when the job is next due."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(200))
    expires_at: Mapped[datetime]
