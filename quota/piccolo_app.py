"""The quota app: monthly allowance, test sends, packs, reservations and the journal."""

import os

from piccolo.conf.apps import AppConfig

from quota.tables import QuotaEntry, QuotaReservation, QuotaReservationPart, QuotaSource

APP_CONFIG = AppConfig(
    app_name="quota",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[QuotaSource, QuotaReservation, QuotaReservationPart, QuotaEntry],
    migration_dependencies=["accounts.piccolo_app"],
    commands=[],
)
