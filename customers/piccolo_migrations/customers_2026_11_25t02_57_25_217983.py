from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Boolean
from piccolo.columns.indexes import IndexMethod
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString

from loyalmail.security import email_hash

ID = "2026-11-25T02:57:25:217983"
VERSION = "1.38.0"
DESCRIPTION = "customer: suppressed flag"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="customers", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Customer",
        tablename="customer",
        column_name="suppressed",
        db_column_name="suppressed",
        column_class_name="Boolean",
        column_class=Boolean,
        params={
            "default": False,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    async def mark_suppressed_customers() -> None:
        """Customers whose address was already on the suppression list (an opt-in mail that
        bounced) get the flag. Only merchants with suppressions are read."""
        engine = engine_finder()
        assert engine is not None
        rows = await engine.run_querystring(
            QueryString("SELECT merchant, email_hash FROM suppression")
        )
        wanted: dict[int, set[str]] = {}
        for row in rows:
            wanted.setdefault(int(row["merchant"]), set()).add(row["email_hash"])
        for merchant, hashes in wanted.items():
            customers = await engine.run_querystring(
                QueryString(
                    "SELECT id, email_normalized FROM customer WHERE merchant = {}", merchant
                )
            )
            for customer in customers:
                if email_hash(customer["email_normalized"]) in hashes:
                    await engine.run_querystring(
                        QueryString(
                            "UPDATE customer SET suppressed = TRUE WHERE id = {}", customer["id"]
                        )
                    )

    manager.add_raw(mark_suppressed_customers)
    return manager
