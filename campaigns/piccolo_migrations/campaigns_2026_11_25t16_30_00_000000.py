from loyalmail.migration_steps import statements_migration

ID = "2026-11-25T16:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sending: a freeze without per-row foreign-key checks; one (campaign, customer) index"

# Freezing 821,166 recipients took 58 s on PostgreSQL; 16 s of it were the three foreign-key
# triggers (each row's check locks the customer row it points at, so the freeze wrote to
# every customer page too) and most of the rest the maintenance of two indexes in random
# order. What the constraints gave is kept another way:
# * campaign: a campaign with recipients is never deleted (only drafts are), and the row is
#   written in the transaction that starts the campaign;
# * merchant: the campaign's merchant, copied by the freeze (the scoping of the token pages);
# * customer: erasure scrubs the campaign's rows itself (campaigns.services.recipients.
#   forget_customer, an erasure step) instead of ON DELETE SET NULL.
# SQLite keeps its constraints: its checks are cheap primary-key probes without locks, and
# dropping one there means rebuilding the table.
POSTGRES_ONLY = [
    "ALTER TABLE campaign_recipient"
    " DROP CONSTRAINT IF EXISTS campaign_recipient_campaign_fkey,"
    " DROP CONSTRAINT IF EXISTS campaign_recipient_merchant_fkey,"
    " DROP CONSTRAINT IF EXISTS campaign_recipient_customer_fkey",
]
STATEMENTS = [
    # Nothing looks a recipient up by address: the audience is one row per address already
    # (the customer table's unique (merchant, email_normalized)).
    "DROP INDEX IF EXISTS campaign_recipient_address",
    # Replaced by the index below: erasure finds a customer's rows campaign by campaign.
    "DROP INDEX IF EXISTS campaign_recipient_customer",
    # One row per customer and campaign; NULL (an erased customer) may repeat.
    "CREATE UNIQUE INDEX campaign_recipient_member ON campaign_recipient (campaign, customer)",
]


async def forwards():
    return statements_migration(
        ID, "campaigns", DESCRIPTION, statements=STATEMENTS, postgres_only=POSTGRES_ONLY
    )
