from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-25T04:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer.custom_fields as JSONB on PostgreSQL"

# Target groups filter on custom fields: ->> on JSON re-parses the whole text of every row
# (benchmarks/segments.py, 1M customers: ~160 ms of a 345 ms scan), on JSONB it reads a
# binary map (~35 ms). SQLite keeps JSON as text whatever the declared type, so only
# PostgreSQL changes. Done as raw SQL because Piccolo's alter_column cannot run on SQLite.
# Piccolo's snapshot therefore still says JSON: an auto-migration generated later will
# propose JSON -> JSONB for this column; drop that part of it.


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="customers", description=DESCRIPTION
    )

    async def custom_fields_to_jsonb() -> None:
        engine = engine_finder()
        assert engine is not None
        if engine.engine_type != "postgres":
            return
        await engine.run_querystring(
            QueryString(
                "ALTER TABLE customer ALTER COLUMN custom_fields DROP DEFAULT,"
                " ALTER COLUMN custom_fields TYPE JSONB USING custom_fields::JSONB,"
                " ALTER COLUMN custom_fields SET DEFAULT '{{}}'::JSONB"  # {{}}: QueryString's escaped braces
            )
        )

    manager.add_raw(custom_fields_to_jsonb)
    return manager
