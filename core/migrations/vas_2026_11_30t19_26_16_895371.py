from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-30T19:26:16:895371"
VERSION = "1.38.0"
DESCRIPTION = "vas_stream.error_code"


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="vas", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Stream",
        tablename="vas_stream",
        column_name="error_code",
        db_column_name="error_code",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 32,
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
