import os

from piccolo.conf.apps import AppConfig

from customers.tables import (
    ConsentEvent,
    Customer,
    CustomerTypeChange,
    ImportIssue,
    ImportJob,
    LoyaltyTally,
    Purchase,
    Suppression,
)

APP_CONFIG = AppConfig(
    app_name="customers",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[
        Customer,
        Purchase,
        ConsentEvent,
        Suppression,
        ImportJob,
        ImportIssue,
        CustomerTypeChange,
        LoyaltyTally,
    ],
    migration_dependencies=["accounts.piccolo_app"],
    commands=[],
)
