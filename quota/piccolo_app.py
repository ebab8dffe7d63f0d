"""The quota app. Its tables arrive with the issue that builds it; the app is registered now
so the dependency graph and migration order are fixed from the start."""

import os

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="quota",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[],
    migration_dependencies=["accounts.piccolo_app"],
    commands=[],
)
