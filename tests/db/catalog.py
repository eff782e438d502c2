"""Read a database's schema and migration records straight from its catalog (sqlite3 or
asyncpg), independently of Piccolo."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg

from core.settings import DatabaseSettings


async def fetch(settings: DatabaseSettings, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of one query, as tuples."""
    if settings.is_postgres:
        conn = await asyncpg.connect(settings.url)
        try:
            return [tuple(r.values()) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()
    with sqlite3.connect(settings.sqlite_path) as db:
        return [tuple(r) for r in db.execute(sql.replace("$1", "?"), args).fetchall()]


async def ledger(settings: DatabaseSettings) -> list[str]:
    """The VAS migrations recorded as applied, in the order they were recorded."""
    rows = await fetch(settings, "SELECT name FROM migration WHERE app_name = $1 ORDER BY id", "vas")
    return [r[0] for r in rows]


async def tables(settings: DatabaseSettings) -> set[str]:
    if settings.is_postgres:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {r[0] for r in await fetch(settings, sql)}


async def columns(settings: DatabaseSettings, table: str) -> list[str]:
    if settings.is_postgres:
        sql = ("SELECT column_name FROM information_schema.columns "
               "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position")
        return [r[0] for r in await fetch(settings, sql, table)]
    return [r[1] for r in await fetch(settings, f'PRAGMA table_info("{table}")')]


async def indexes(settings: DatabaseSettings) -> dict[str, str]:
    """Index name → its definition."""
    if settings.is_postgres:
        sql = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    else:
        sql = "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index'"
    return {r[0]: r[1] for r in await fetch(settings, sql)}


async def schema(settings: DatabaseSettings) -> list[tuple[Any, ...]]:
    """Everything that defines the schema: tables, columns, types, defaults, indexes,
    constraints. Equal lists mean equal schemas."""
    if not settings.is_postgres:
        return await fetch(
            settings, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        )
    columns = await fetch(settings, """
        SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length,
               is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""")
    indexes = await fetch(
        settings,
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "ORDER BY 1, 2",
    )
    constraints = await fetch(settings, """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""")
    return [("column", *c) for c in columns] + [("index", *i) for i in indexes] + [
        ("constraint", *c) for c in constraints
    ]
