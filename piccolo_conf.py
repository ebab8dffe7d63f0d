"""Piccolo's configuration: the engine from the settings, and every app, registered explicitly."""

from piccolo.conf.apps import AppRegistry

from loyalmail.database import make_engine
from loyalmail.settings import get_settings

DB = make_engine(get_settings().effective_database_url)

APP_REGISTRY = AppRegistry(
    apps=[
        "accounts.piccolo_app",
        "customers.piccolo_app",
        "segments.piccolo_app",
        "templates.piccolo_app",
        "quota.piccolo_app",
        "campaigns.piccolo_app",
        "tracking.piccolo_app",
    ]
)
