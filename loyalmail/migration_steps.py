"""The runner the raw-SQL migrations share.

Each migration keeps its own statements, copied into it and never imported, so that it
stays what it was when later code changes. Running them is the same for all of them and
holds no schema, so it lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString


def statements_migration(
    migration_id: str,
    app_name: str,
    description: str,
    statements: Sequence[str] = (),
    postgres_only: Sequence[str] = (),
) -> MigrationManager:
    """A migration that runs ``postgres_only`` on PostgreSQL (skipped on SQLite), then
    ``statements`` on either engine, in order."""
    manager = MigrationManager(
        migration_id=migration_id, app_name=app_name, description=description
    )

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        postgres = engine.engine_type != "sqlite"
        for statement in [*(postgres_only if postgres else ()), *statements]:
            await engine.run_querystring(QueryString(statement))

    manager.add_raw(run)
    return manager
