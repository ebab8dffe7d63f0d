from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-07T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tracking: 64-bit keys for events and the per-person sums"

# Piccolo's Serial is a 32-bit integer on PostgreSQL: 2,147,483,647 rows at most. Every
# open, click and unsubscribe of every campaign of every shop is an event, and everybody
# who did one a row of tracking_person: more than the recipient rows, which pass 2^31 in
# about half a year at 10,000 shops (the campaigns migration of the same day). So the keys
# and the sequences that number them become BIGINT (the recipient columns already are).
# SQLite's INTEGER PRIMARY KEY is 64 bits already. Copied here, not imported, so this
# migration stays what it was.
POSTGRES_ONLY = [
    "ALTER TABLE tracking_event ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE tracking_event_id_seq AS BIGINT",
    "ALTER TABLE tracking_person ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE tracking_person_id_seq AS BIGINT",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tracking", description=DESCRIPTION)

    async def statements() -> None:
        engine = engine_finder()
        assert engine is not None
        if engine.engine_type == "sqlite":
            return
        for statement in POSTGRES_ONLY:
            await engine.run_querystring(QueryString(statement))

    manager.add_raw(statements)

    return manager
