"""The campaigns app: drafts, their sending (frozen recipients and their batches), and the
bounces and complaints that come back afterwards."""

import os

from piccolo.conf.apps import AppConfig

from campaigns.services import erasure
from campaigns.tables import (
    Campaign,
    CampaignBatch,
    CampaignBounce,
    CampaignLink,
    CampaignRecipient,
)

# Every process loads this module (piccolo_conf's registry): erasure then reaches our rows.
erasure.register()

APP_CONFIG = AppConfig(
    app_name="campaigns",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Campaign, CampaignRecipient, CampaignBatch, CampaignBounce, CampaignLink],
    migration_dependencies=[
        "customers.piccolo_app",
        "segments.piccolo_app",
        "templates.piccolo_app",
        "quota.piccolo_app",
    ],
    commands=[],
)
