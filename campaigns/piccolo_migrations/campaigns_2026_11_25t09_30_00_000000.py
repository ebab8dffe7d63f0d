from loyalmail.migration_steps import statements_migration

ID = "2026-11-25T09:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sending: the indexes of the recipient and batch queries"

# A migration of its own: Piccolo runs a migration's raw steps before its new tables exist.

STATEMENTS = [
    # One row per address and campaign, whatever the audience query yields: a second freeze
    # of the same campaign cannot add anyone twice.
    "CREATE UNIQUE INDEX campaign_recipient_address ON campaign_recipient"
    " (campaign, email_normalized)",
    # Progress counts by status, the "anything left?" check and the reconciler's scan.
    "CREATE INDEX campaign_recipient_progress ON campaign_recipient (campaign, status)",
    "CREATE INDEX campaign_batch_campaign ON campaign_batch (campaign, id)",
    # The scheduler tick's "what is due?" and the reconciler's "what is running?".
    "CREATE INDEX campaign_status_due ON campaign (status, scheduled_at)",
]


async def forwards():
    return statements_migration(ID, "campaigns", DESCRIPTION, statements=STATEMENTS)
