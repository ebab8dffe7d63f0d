from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

ID = "2026-11-25T18:38:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tracking: the keys of the added-up tables, and their rows for the events so far"

# A migration of its own: Piccolo runs a migration's raw steps before its new tables exist.
# The statements are copied here, not imported, so this migration stays what it was.

INDEXES = [
    # The writer's upsert key, and the report's read: one campaign's people.
    "CREATE UNIQUE INDEX tracking_person_key ON tracking_person (campaign, recipient)",
    "CREATE UNIQUE INDEX tracking_hour_key ON tracking_hour (campaign, hour)",
]

PEOPLE = """
INSERT INTO tracking_person (merchant, campaign, recipient, opens, clicks, machine_opens,
                             left_at, back_at)
SELECT merchant, campaign, recipient,
       COUNT(CASE WHEN kind = 'open' AND NOT machine THEN 1 END),
       COUNT(CASE WHEN kind = 'click' AND NOT machine THEN 1 END),
       COUNT(CASE WHEN kind = 'open' AND machine THEN 1 END),
       MAX(CASE WHEN kind = 'unsubscribe' THEN occurred_at END),
       MAX(CASE WHEN kind = 'resubscribe' THEN occurred_at END)
FROM tracking_event WHERE recipient > 0
GROUP BY merchant, campaign, recipient
"""

# The hour as each engine stores a timestamptz (SQLite: Python's isoformat, in UTC).
HOUR = {
    "postgres": "date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    "sqlite": "substr(occurred_at, 1, 13) || ':00:00+00:00'",
}

HOURS = """
INSERT INTO tracking_hour (merchant, campaign, hour, opens, clicks)
SELECT merchant, campaign, {hour},
       COUNT(CASE WHEN kind = 'open' THEN 1 END), COUNT(CASE WHEN kind = 'click' THEN 1 END)
FROM tracking_event
WHERE recipient > 0 AND kind IN ('open', 'click') AND NOT machine
GROUP BY merchant, campaign, {hour}
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tracking", description=DESCRIPTION)

    async def statements() -> None:
        engine = engine_finder()
        assert engine is not None
        hour = HOUR["postgres" if isinstance(engine, PostgresEngine) else "sqlite"]
        for statement in [*INDEXES, PEOPLE, HOURS.format(hour=hour)]:
            await engine.run_querystring(QueryString(statement))

    manager.add_raw(statements)

    return manager
