"""The CRUD application a county IT office would write instead of taizhang: the import baseline.

A plain SQLAlchemy-ORM app: one `services` table, one `audit_log` row per insert (who,
when, what), rows added through the ORM session and flushed and committed in batches
of 1,000. It checks what such an app checks (the columns parse, minutes are a number,
the time is not in the future) and nothing a ledger adds (no chain, no claims, no
encryption, no periods). `tests.perf.bench_import` times it beside taizhang on the
same file and measures its bytes on disk per service.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, create_engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

BATCH = 1000


class Base(DeclarativeBase):
    pass


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    residents: Mapped[str] = mapped_column(String(400))
    providers: Mapped[str] = mapped_column(String(400))
    occurred_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    minutes: Mapped[int] = mapped_column(Integer)
    place: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    detail: Mapped[str] = mapped_column(Text)
    service: Mapped[Service] = relationship()


def engine_for(url: str) -> Any:
    """An engine on a SQLite file path or a PostgreSQL URL (psycopg 3)."""
    if url.startswith("postgresql://"):
        return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    engine = create_engine(f"sqlite:///{url}")

    @event.listens_for(engine, "connect")
    def _wal(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    return engine


def create(url: str) -> Any:
    engine = engine_for(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    return engine


def import_services(engine: Any, path: Path, actor: str = "bench") -> int:
    """Insert every row of a services CSV with its audit row, 1,000 per commit; returns the rows."""
    now = datetime.now()
    count = 0
    with path.open(newline="", encoding="utf-8") as f, Session(engine) as session:
        reader = csv.DictReader(f)
        for row in reader:
            occurred = datetime.fromisoformat(row["occurred_at"])
            if occurred > now:
                raise ValueError(f"occurred_at is in the future: {row['occurred_at']}")
            service = Service(
                community=row["community"],
                kind=row["kind"],
                residents=row["residents"],
                providers=row["providers"],
                occurred_at=occurred,
                minutes=int(row["minutes"]),
                place=row["place"] or None,
                note=row["note"] or None,
                created_at=now,
            )
            session.add(service)
            # The unit of work inserts the services of a batch first and fills in the audit rows' key.
            session.add(AuditLog(at=now, actor=actor, action="create", service=service, detail=row["community"]))
            count += 1
            if count % BATCH == 0:
                session.commit()
        session.commit()
        assert session.scalar(select(func.count()).select_from(Service)) == count
    return count
