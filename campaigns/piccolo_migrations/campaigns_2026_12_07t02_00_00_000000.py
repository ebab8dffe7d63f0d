from loyalmail.migration_steps import statements_migration

ID = "2026-12-07T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "campaigns: 64-bit keys for recipient rows and bounces"

# Piccolo's Serial is a 32-bit integer on PostgreSQL: 2,147,483,647 rows at most. One
# installation writes a recipient row for every address of every campaign: 10,000 shops
# sending to 10,000 addresses four times a month pass 2^31 in about half a year, and the
# freeze would then fail. So the keys, the sequences that number them and the bounces'
# reference to their recipient become BIGINT, before there is much to rewrite. SQLite's
# INTEGER PRIMARY KEY is 64 bits already. Copied here, not imported, so this migration
# stays what it was.
POSTGRES_ONLY = [
    "ALTER TABLE campaign_recipient ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE campaign_recipient_id_seq AS BIGINT",
    "ALTER TABLE campaign_bounce ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE campaign_bounce_id_seq AS BIGINT",
    "ALTER TABLE campaign_bounce ALTER COLUMN recipient TYPE BIGINT",
]


async def forwards():
    return statements_migration(ID, "campaigns", DESCRIPTION, postgres_only=POSTGRES_ONLY)
