"""The tracking app: what recipients did with the messages (opens, clicks, unsubscribes),
the recipient-facing routes that record it, and the campaign reports built from it."""

import os

from piccolo.conf.apps import AppConfig

from tracking.tables import TrackingEvent, TrackingHour, TrackingPerson

APP_CONFIG = AppConfig(
    app_name="tracking",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[TrackingEvent, TrackingPerson, TrackingHour],
    migration_dependencies=["campaigns.piccolo_app"],
    commands=[],
)
