"""The migrations build the schema the models describe: a column or index added to one
and not the other would pass every test on a fresh database yet differ on an upgraded one."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smsxml.server.models import Base
from smsxml.server.store import Store

from .test_store import _postgres


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_migrations_match_the_models(tmp_path: Path, engine: str) -> None:
    url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}" if engine == "sqlite" else _postgres()
    store = Store(url)
    try:
        with store.engine.connect() as db:
            differences = compare_metadata(MigrationContext.configure(db), Base.metadata)
    finally:
        store.close()
    assert differences == []
