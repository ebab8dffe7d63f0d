"""The campaigns app: drafts now; scheduling, dispatch and reports with later issues."""

import os

from piccolo.conf.apps import AppConfig

from campaigns.tables import Campaign

APP_CONFIG = AppConfig(
    app_name="campaigns",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Campaign],
    migration_dependencies=["segments.piccolo_app", "templates.piccolo_app", "quota.piccolo_app"],
    commands=[],
)
