from loyalmail.migration_steps import statements_migration

ID = "2026-12-07T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customers: 64-bit keys for purchases and the consent log"

# Piccolo's Serial is a 32-bit integer on PostgreSQL: 2,147,483,647 rows at most. Every
# sale of every shop is a purchase row, and every opt-in, unsubscribe and pause a consent
# entry; an installation for thousands of shops passes that. So the keys and the sequences
# that number them become BIGINT, before there is much to rewrite. SQLite's INTEGER
# PRIMARY KEY is 64 bits already. Copied here, not imported, so this migration stays what
# it was.
POSTGRES_ONLY = [
    "ALTER TABLE purchase ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE purchase_id_seq AS BIGINT",
    "ALTER TABLE consent_event ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE consent_event_id_seq AS BIGINT",
]


async def forwards():
    return statements_migration(ID, "customers", DESCRIPTION, postgres_only=POSTGRES_ONLY)
