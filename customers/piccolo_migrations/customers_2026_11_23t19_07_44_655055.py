"""Composite unique and sort indexes, as raw SQL both engines accept.

Piccolo adds its Unique constraint with ALTER TABLE … ADD CONSTRAINT, which SQLite lacks;
a unique index gives the same guarantee on both engines.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-23T19:07:44:655055"
VERSION = "1.38.0"
DESCRIPTION = "composite indexes"

INDEXES = [
    "CREATE UNIQUE INDEX IF NOT EXISTS customer_merchant_email_uq"
    " ON customer (merchant, email_normalized)",
    "CREATE UNIQUE INDEX IF NOT EXISTS suppression_merchant_hash_uq"
    " ON suppression (merchant, email_hash)",
    "CREATE INDEX IF NOT EXISTS customer_merchant_created_ix ON customer (merchant, created_at)",
    "CREATE INDEX IF NOT EXISTS customer_merchant_ltv_ix"
    " ON customer (merchant, lifetime_value_minor)",
    "CREATE INDEX IF NOT EXISTS purchase_merchant_occurred_ix ON purchase (merchant, occurred_at)",
    "CREATE INDEX IF NOT EXISTS import_issue_job_row_ix ON import_issue (job, row_number)",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in INDEXES:
            await engine.run_ddl(statement)

    manager.add_raw(create_indexes)
    return manager
