from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-25T08:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "quota ledger: idempotency keys and the balance rule in the database"

# A migration of its own: Piccolo runs a migration's raw steps before its new tables exist.


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="quota", description=DESCRIPTION)

    # What Piccolo's columns cannot say: the keys that make repeats no-ops, and the balance
    # rule as a second line of defence behind the services' conditional UPDATEs. SQLite
    # cannot add a CHECK to an existing table, so it gets triggers that abort the write.
    async def keys_and_balance_rules() -> None:
        engine = engine_finder()
        assert engine is not None
        statements = [
            "CREATE UNIQUE INDEX quota_source_identity ON quota_source"
            " (merchant, kind, period, reference)",
            "CREATE UNIQUE INDEX quota_reservation_key ON quota_reservation (merchant, key)",
            "CREATE UNIQUE INDEX quota_entry_key ON quota_entry (merchant, key)",
            "CREATE INDEX quota_entry_history ON quota_entry (merchant, created_at)",
        ]
        # table: (columns that may never go negative, the parts that may not exceed the whole)
        rules = {
            "quota_source": (("granted", "reserved", "spent", "expired"), "granted"),
            "quota_reservation": (("units", "spent", "released", "expired"), "units"),
            "quota_reservation_part": (("units", "spent", "released", "expired"), "units"),
        }

        def rule(columns: tuple[str, ...], whole: str, row: str) -> str:
            parts = [c for c in columns if c != whole]
            non_negative = " AND ".join(f"{row}{c} >= 0" for c in columns)
            total = " + ".join(f"{row}{c}" for c in parts)
            return f"{non_negative} AND {total} <= {row}{whole}"

        if engine.engine_type == "postgres":
            statements += [
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_balance"
                f" CHECK ({rule(columns, whole, '')})"
                for table, (columns, whole) in rules.items()
            ]
        else:
            statements += [
                f"CREATE TRIGGER {table}_balance_{event.lower()} BEFORE {event} ON {table}"
                f" WHEN NOT ({rule(columns, whole, 'NEW.')})"
                f" BEGIN SELECT RAISE(ABORT, '{table} balance rule'); END"
                for table, (columns, whole) in rules.items()
                for event in ("INSERT", "UPDATE")
            ]
        for statement in statements:
            await engine.run_querystring(QueryString(statement))

    manager.add_raw(keys_and_balance_rules)

    return manager
