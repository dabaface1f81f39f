"""Schema migrations with Alembic, run from code: ``Store`` upgrades its database to
the latest revision when it opens it, so a fresh SQLite file or PostgreSQL database is
ready without a separate step.

Several nodes may start together on one fresh PostgreSQL database: each upgrade runs
under a transaction-scoped advisory lock, so one migrates while the others wait and
then find nothing left to do (without it, the second crashed on a UniqueViolation).
SQLite needs no lock: its write transaction is already exclusive."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

__all__ = ["MIGRATIONS", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: the advisory lock key of migrations (any constant shared by every node: "smsxml" in ASCII)
MIGRATION_LOCK = 0x736D73786D6C


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind ``engine`` to ``revision``."""
    config = _config()
    with engine.begin() as connection:
        _lock_out_other_nodes(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _lock_out_other_nodes(connection: Connection) -> None:
    """Wait for any other node's migration (PostgreSQL; released at commit)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
