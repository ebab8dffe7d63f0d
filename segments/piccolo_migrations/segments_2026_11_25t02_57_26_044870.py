from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete
from piccolo.columns.base import OnUpdate
from piccolo.columns.column_types import ForeignKey
from piccolo.columns.column_types import JSON
from piccolo.columns.column_types import Serial
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.column_types import Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

# Written for the shapes in segments/queries.py: the partial indexes repeat its
# ELIGIBLE_INDEX_PREDICATE and the birthday index its month_day_sql(). Copied here, not
# imported, so this migration stays what it was when later code changes.
ELIGIBLE = "email_status = 'verified' AND subscribed = TRUE AND suppressed = FALSE"
MONTH_DAY = {
    "postgres": "(CAST(EXTRACT(MONTH FROM birth_date) AS INTEGER) * 100"
    " + CAST(EXTRACT(DAY FROM birth_date) AS INTEGER))",
    "sqlite": "CAST(strftime('%m%d', birth_date) AS INTEGER)",
}


# The birthday and bought_between shapes are answered from the index alone (index-only
# scans; benchmarks/segments.py, 1M customers: birthdays 131 ms -> 5 ms): the birthday index
# carries birth_date (the shape tests it IS NOT NULL), the purchase index carries merchant
# (the EXISTS compares it) and holds only kind = 'purchase' rows, the only ones the shape
# reads. PostgreSQL takes them as INCLUDE columns, so they are no search key a generic plan
# could pick for an age range; SQLite has no INCLUDE, a trailing key column does it there.
BIRTHDAY_COLUMNS = {
    "postgres": f"(merchant, ({MONTH_DAY['postgres']})) INCLUDE (birth_date)",
    "sqlite": f"(merchant, ({MONTH_DAY['sqlite']}), birth_date)",
}
BOUGHT_COLUMNS = {
    "postgres": "(customer, occurred_at) INCLUDE (merchant)",
    "sqlite": "(customer, occurred_at, merchant)",
}


def index_statements(dialect: str) -> list[str]:
    return [
        "CREATE INDEX IF NOT EXISTS customer_eligible_type_ix"
        f" ON customer (merchant, customer_type) WHERE {ELIGIBLE}",
        "CREATE INDEX IF NOT EXISTS customer_eligible_first_purchase_ix"
        f" ON customer (merchant, first_purchase_at) WHERE {ELIGIBLE}",
        "CREATE INDEX IF NOT EXISTS customer_eligible_last_purchase_ix"
        f" ON customer (merchant, last_purchase_at) WHERE {ELIGIBLE}",
        "CREATE INDEX IF NOT EXISTS customer_eligible_birthday_ix"
        f" ON customer {BIRTHDAY_COLUMNS[dialect]} WHERE {ELIGIBLE}",
        "CREATE INDEX IF NOT EXISTS purchase_customer_bought_ix"
        f" ON purchase {BOUGHT_COLUMNS[dialect]} WHERE kind = 'purchase'",
    ]


class Merchant(Table, tablename="merchant", schema=None):
    id = Serial(
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name="id",
        secret=False,
    )


class User(Table, tablename="marketer_user", schema=None):
    id = Serial(
        null=False,
        primary_key=True,
        unique=False,
        index=False,
        index_method=IndexMethod.btree,
        choices=None,
        db_column_name="id",
        secret=False,
    )


ID = "2026-11-25T02:57:26:044870"
VERSION = "1.38.0"
DESCRIPTION = "segment table; indexes for target group queries"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="segments", description=DESCRIPTION
    )

    manager.add_table(
        class_name="Segment", tablename="segment", schema=None, columns=None
    )

    manager.add_column(
        table_class_name="Segment",
        tablename="segment",
        column_name="merchant",
        db_column_name="merchant",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": Merchant,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Segment",
        tablename="segment",
        column_name="name",
        db_column_name="name",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 120,
            "default": "",
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

    manager.add_column(
        table_class_name="Segment",
        tablename="segment",
        column_name="description",
        db_column_name="description",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 500,
            "default": "",
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

    manager.add_column(
        table_class_name="Segment",
        tablename="segment",
        column_name="definition",
        db_column_name="definition",
        column_class_name="JSON",
        column_class=JSON,
        params={
            "default": "{}",
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

    manager.add_column(
        table_class_name="Segment",
        tablename="segment",
        column_name="created_by",
        db_column_name="created_by",
        column_class_name="ForeignKey",
        column_class=ForeignKey,
        params={
            "references": User,
            "on_delete": OnDelete.cascade,
            "on_update": OnUpdate.cascade,
            "target_column": None,
            "null": True,
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

    manager.add_column(
        table_class_name="Segment",
        tablename="segment",
        column_name="created_at",
        db_column_name="created_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
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

    manager.add_column(
        table_class_name="Segment",
        tablename="segment",
        column_name="updated_at",
        db_column_name="updated_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
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

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        dialect = "postgres" if isinstance(engine, PostgresEngine) else "sqlite"
        for statement in index_statements(dialect):
            await engine.run_ddl(statement)

    manager.add_raw(create_indexes)
    return manager
