"""Migrations: they build the schema the models describe (a column or index added to one
and not the other would pass every test on a fresh database yet differ on an upgraded
one), settle rows written before them, and run once when nodes start together."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from smsxml.server.models import Base
from smsxml.server.store import Store

from .conftest import fresh_postgres


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_migrations_match_the_models(tmp_path: Path, engine: str) -> None:
    """A database migrated to the latest revision has exactly the tables, columns and
    indexes of the models."""
    url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}" if engine == "sqlite" else fresh_postgres()
    store = Store(url)
    try:
        with store.engine.connect() as db:
            differences = compare_metadata(MigrationContext.configure(db), Base.metadata)
    finally:
        store.close()
    assert differences == []


def test_the_migration_marks_rows_nobody_waits_for(tmp_path: Path) -> None:
    """Rows written before revision 0002 (all unnotified) are settled by it."""
    from smsxml.server.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as db:
        db.execute(text("INSERT INTO accounts VALUES (1, 'acme', 'x', 0, '2026-01-01')"))
        for message_id, dlr_url in (("M1", None), ("M2", "https://client.example.org/dlr")):
            db.execute(
                text(
                    "INSERT INTO messages (id, account_id, sender, text, coding, flash, parts,"
                    " recipients, dlr_url, created_at) VALUES"
                    " (:id, 1, 'Acme', 'hi', 'GSM', 0, 1, 1, :dlr, '2026-01-01')"
                ),
                {"id": message_id, "dlr": dlr_url},
            )
            db.execute(
                text(
                    "INSERT INTO deliveries (message_id, recipient, state, attempts,"
                    " next_attempt_at, tried, updated_at, notified) VALUES"
                    " (:id, '306912345678', 'Delivered', 1, '2026-01-01', '', '2026-01-01', 0)"
                ),
                {"id": message_id},
            )
    upgrade(engine)
    with engine.connect() as db:
        notified = dict(db.execute(text("SELECT message_id, notified FROM deliveries")).all())
    engine.dispose()
    assert notified == {"M1": 1, "M2": 0}


def test_nodes_starting_together_on_a_fresh_database_all_come_up() -> None:
    """Three processes open one fresh PostgreSQL database at once: each finds it migrated
    (the others waited on the migration lock), none crashes."""
    import subprocess
    import sys

    url = fresh_postgres()
    start = (
        "import sys; from smsxml.server.store import Store; Store(sys.argv[1]).close(); print('up')"
    )
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", start, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [node.communicate(timeout=60) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["up"] * 3
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
