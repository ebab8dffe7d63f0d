"""The database engine: SQLite by default, PostgreSQL when the URL says so.

``piccolo_conf.DB`` is built from the settings here. Tests (and the CLI) can point every
table at another engine with :func:`use_engine`, which is how one test suite runs on both.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table

_current: Engine | None = None

#: Set on every PostgreSQL connection. Target-group counts are prepared statements whose best
#: plan depends on the values (a merchant of 800,000 customers or of 80): after five runs
#: PostgreSQL would settle on one generic plan with a blind estimate, measured 2× slower at a
#: million customers (benchmarks/segments.py), so plans are made for each call's values.
#: JIT compiles for 40–50 ms on plans just over its cost threshold, more than it saves on
#: queries that run in tens of milliseconds.
POSTGRES_SESSION_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}


def make_engine(url: str) -> Engine:
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql"}:
        config: dict[str, object] = {
            "host": parsed.hostname or "127.0.0.1",
            "port": parsed.port or 5432,
            "user": unquote(parsed.username or "postgres"),
            "database": (parsed.path or "/loyalmail").lstrip("/"),
        }
        if parsed.password:
            config["password"] = unquote(parsed.password)
        config["server_settings"] = POSTGRES_SESSION_SETTINGS
        return PostgresEngine(config=config, log_queries=False)
    if parsed.scheme == "sqlite":
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
        path = Path(unquote(url.removeprefix("sqlite:///")))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteEngine(path=str(path), timeout=30)
    raise ValueError(f"Unsupported database URL {url!r}: use sqlite:///path or postgresql://…")


def all_tables() -> list[type[Table]]:
    from piccolo.apps.migrations.tables import Migration
    from piccolo.conf.apps import Finder

    # Piccolo's own migration ledger is not in our registry but must follow the engine too.
    return [*Finder().get_table_classes(), Migration]


def use_engine(engine: Engine) -> None:
    """Point piccolo_conf and every registered table at ``engine``."""
    global _current
    import piccolo_conf

    piccolo_conf.DB = engine
    for table in all_tables():
        table._meta.db = engine
    _current = engine


def engine() -> Engine:
    if _current is not None:
        return _current
    import piccolo_conf

    return piccolo_conf.DB


def is_postgres(db: Engine | None = None) -> bool:
    return isinstance(db or engine(), PostgresEngine)
