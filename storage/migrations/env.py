"""Alembic environment: the URL comes from the caller (storage.db.alembic_config)."""
import contextlib
import sqlite3

from alembic import context
from sqlalchemy import create_engine, event, pool

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    url = config.get_main_option("sqlalchemy.url")
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, poolclass=pool.NullPool, **({"connect_args": {"timeout": 60}} if sqlite else {}))
    options = {}
    if sqlite:
        one_upgrade_at_a_time(engine)
        options["transactional_ddl"] = True
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def one_upgrade_at_a_time(engine) -> None:
    """SQLite: the whole upgrade is one transaction holding the write lock from its start (BEGIN IMMEDIATE).

    Two processes started together on a new file (two `gonghao chat` at once) would otherwise both create
    the tables; now the second waits, then reads the version the first wrote and has nothing to do.
    pysqlite's own transaction handling is turned off (it begins only before an INSERT or UPDATE, so the
    version would be read outside the transaction), as in SQLAlchemy's SQLite dialect documentation
    ("Serializable isolation / Savepoints / Transactional DDL").
    """
    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_to_us(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        with contextlib.suppress(sqlite3.OperationalError):  # locked: the other process is switching it
            dbapi_connection.execute("PRAGMA journal_mode=WAL")  # a new file is WAL from the start (storage/db.py)

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
