"""The templates app: branded MJML layouts, rendering, and the media library."""

import os

from piccolo.conf.apps import AppConfig

from templates.tables import MediaFile

APP_CONFIG = AppConfig(
    app_name="templates",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[MediaFile],
    migration_dependencies=["accounts.piccolo_app"],
    commands=[],
)
