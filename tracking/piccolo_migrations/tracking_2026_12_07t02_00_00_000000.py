from loyalmail.migration_steps import statements_migration

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
    return statements_migration(ID, "tracking", DESCRIPTION, postgres_only=POSTGRES_ONLY)
