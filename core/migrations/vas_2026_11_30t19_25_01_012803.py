from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-30T19:25:01:012803"
VERSION = "1.38.0"
DESCRIPTION = "The three raw indexes of the release before migrations"

# Exactly the statements that release ran after creating its tables. Piccolo runs a
# migration's raw steps before its tables are created, so these follow in a migration of
# their own. The states are written out: a migration is history and must not follow later
# edits of core.stream_states.
INDEXES = (
    # At most one active stream per camera, enforced by the database itself.
    "CREATE UNIQUE INDEX IF NOT EXISTS vas_stream_one_active_per_camera "
    "ON vas_stream (camera_id) WHERE state IN ('ERROR', 'INITIALIZING', 'LIVE', 'READY')",
    "CREATE UNIQUE INDEX IF NOT EXISTS vas_producer_one_per_stream "
    "ON vas_producer (stream_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS vas_hls_segment_name "
    "ON vas_hls_segment (stream_id, filename)",
)
DROP = (
    "DROP INDEX IF EXISTS vas_stream_one_active_per_camera",
    "DROP INDEX IF EXISTS vas_producer_one_per_stream",
    "DROP INDEX IF EXISTS vas_hls_segment_name",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="vas", description=DESCRIPTION
    )

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in INDEXES:
            await engine.run_ddl(statement)

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in DROP:
            await engine.run_ddl(statement)

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)

    return manager
