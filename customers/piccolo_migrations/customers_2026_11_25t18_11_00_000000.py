from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-25T18:11:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "an index of the paused customers"

# A migration of its own: Piccolo runs a migration's raw steps before its new columns exist.

# The periodic job that ends pauses reads only paused rows: a partial index keeps that a
# lookup of a few rows whatever the size of the customer table.
STATEMENT = (
    "CREATE INDEX IF NOT EXISTS customer_paused_until_ix ON customer (paused_until)"
    " WHERE paused_until IS NOT NULL"
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_querystring(QueryString(STATEMENT))

    manager.add_raw(index)

    return manager
