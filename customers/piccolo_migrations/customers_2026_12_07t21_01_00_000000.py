ID = "2026-12-07T21:01:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customers: the loyalty tally kept by triggers, seeded from today's customers"

# The quota's monthly allowance is 2 × the loyal customers at the end of the previous month.
# A count of today's rows cannot say that once a type changed after the month ended, so every
# change of the count is written down with its time, by the database itself: a trigger sees
# every path that inserts, updates or deletes a customer (the service, an import's bulk SQL,
# an erasure). The time is the row's own: created_at for a new customer, updated_at for a
# change or a deletion (every write of the services sets it; the erasure sets it just
# before the row goes), so the count follows the application's one clock.
#
# Two counts: every loyal customer (the operator decides who is loyal), and the loyal
# customers whose address the recipient confirmed (the merchant decides; an address the
# merchant only declared verified does not count). Copied here, not imported, so this
# migration stays what it was.

POSTGRES_ONLY = [
    "ALTER TABLE loyalty_tally ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE loyalty_tally_id_seq AS BIGINT",
    "ALTER TABLE customer_type_change ALTER COLUMN id TYPE BIGINT",
    "ALTER SEQUENCE customer_type_change_id_seq AS BIGINT",
    """
CREATE FUNCTION customer_loyalty_tally() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  loyal_change integer := 0;
  confirmed_change integer := 0;
  shop integer;
  moment timestamptz;
BEGIN
  IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
    loyal_change := (NEW.customer_type = 'loyal')::integer;
    confirmed_change := (NEW.customer_type = 'loyal' AND NEW.email_status = 'verified'
      AND NEW.confirmed_by_recipient)::integer;
    shop := NEW.merchant;
    moment := CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE NEW.updated_at END;
  END IF;
  IF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
    loyal_change := loyal_change - (OLD.customer_type = 'loyal')::integer;
    confirmed_change := confirmed_change - (OLD.customer_type = 'loyal'
      AND OLD.email_status = 'verified' AND OLD.confirmed_by_recipient)::integer;
    shop := OLD.merchant;
    moment := COALESCE(moment, OLD.updated_at);
  END IF;
  IF loyal_change <> 0 OR confirmed_change <> 0 THEN
    INSERT INTO loyalty_tally (merchant, changed_at, loyal, confirmed_loyal)
    VALUES (shop, moment, loyal_change, confirmed_change);
  END IF;
  RETURN NULL;
END
$$
""",
    "CREATE TRIGGER customer_loyalty_tally AFTER INSERT OR DELETE OR UPDATE OF customer_type,"
    " email_status, confirmed_by_recipient ON customer"
    " FOR EACH ROW EXECUTE FUNCTION customer_loyalty_tally()",
]


def _loyal(row: str) -> str:
    return f"({row}.customer_type = 'loyal')"


def _confirmed(row: str) -> str:
    return (
        f"({row}.customer_type = 'loyal' AND {row}.email_status = 'verified'"
        f" AND {row}.confirmed_by_recipient = 1)"
    )


_INSERT = "INSERT INTO loyalty_tally (merchant, changed_at, loyal, confirmed_loyal)"

SQLITE_ONLY = [
    f"CREATE TRIGGER customer_loyalty_insert AFTER INSERT ON customer WHEN {_loyal('NEW')}"
    f" BEGIN {_INSERT} VALUES (NEW.merchant, NEW.created_at, 1, {_confirmed('NEW')}); END",
    "CREATE TRIGGER customer_loyalty_update AFTER UPDATE OF customer_type, email_status,"
    " confirmed_by_recipient ON customer"
    f" WHEN {_loyal('NEW')} <> {_loyal('OLD')} OR {_confirmed('NEW')} <> {_confirmed('OLD')}"
    f" BEGIN {_INSERT} VALUES (NEW.merchant, NEW.updated_at,"
    f" {_loyal('NEW')} - {_loyal('OLD')}, {_confirmed('NEW')} - {_confirmed('OLD')}); END",
    f"CREATE TRIGGER customer_loyalty_delete AFTER DELETE ON customer WHEN {_loyal('OLD')}"
    f" BEGIN {_INSERT} VALUES (OLD.merchant, OLD.updated_at, -1, -{_confirmed('OLD')}); END",
]

# Before the triggers: what is there today. A verified address counts as confirmed by the
# recipient when the consent log has the recipient's confirmation of that very address; a
# loyal customer is taken as loyal since it was created (what the allowance assumed so far).
SEED = [
    "UPDATE customer SET confirmed_by_recipient = TRUE WHERE email_status = 'verified'"
    " AND EXISTS (SELECT 1 FROM consent_event e WHERE e.customer = customer.id"
    " AND e.merchant = customer.merchant AND e.source = 'link'"
    " AND e.action IN ('confirmed', 'resubscribed')"
    " AND lower(trim(e.email)) = customer.email_normalized)",
    f"{_INSERT} SELECT merchant, created_at, 1,"
    " CASE WHEN email_status = 'verified' AND confirmed_by_recipient THEN 1 ELSE 0 END"
    " FROM customer WHERE customer_type = 'loyal'",
    # Covering: the count at an instant is read from the index alone.
    "CREATE INDEX loyalty_tally_count ON loyalty_tally"
    " (merchant, changed_at, loyal, confirmed_loyal)",
    "CREATE INDEX customer_type_change_customer_time ON customer_type_change"
    " (customer, created_at)",
]


async def forwards():
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager
    from piccolo.engine.finder import engine_finder
    from piccolo.querystring import QueryString

    manager = MigrationManager(migration_id=ID, app_name="customers", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        postgres = engine.engine_type != "sqlite"
        for statement in [*SEED, *(POSTGRES_ONLY if postgres else SQLITE_ONLY)]:
            await engine.run_querystring(QueryString(statement))

    manager.add_raw(run)
    return manager
