import os

from piccolo.conf.apps import AppConfig

from accounts.tables import (
    ApiToken,
    Merchant,
    SendingDomain,
    SendingDomainKey,
    User,
    WebSession,
)

APP_CONFIG = AppConfig(
    app_name="accounts",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Merchant, User, WebSession, ApiToken, SendingDomain, SendingDomainKey],
    migration_dependencies=[],
    commands=[],
)
