"""The segments app: saved target groups, and the indexes the group queries are built for."""

import os

from piccolo.conf.apps import AppConfig

from segments.tables import Segment

APP_CONFIG = AppConfig(
    app_name="segments",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Segment],
    migration_dependencies=["customers.piccolo_app"],
    commands=[],
)
