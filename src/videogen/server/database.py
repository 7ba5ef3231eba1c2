"""Database engine (SQLite in WAL mode, or any SQLAlchemy URL such as PostgreSQL) and migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from videogen.errors import UserError

MIGRATIONS = Path(__file__).parent / "migrations"
#: seconds a PostgreSQL server has to answer a connection
CONNECT_TIMEOUT_S = 10


def make_engine(url: str) -> Engine:
    """An engine for ``url`` that has connected once; SQLite gets WAL, a busy timeout and
    cross-thread connections.

    Connecting here makes a database that does not answer (or refuses us) fail when the server
    starts, in one line, instead of at the first request or job.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed)
        else:
            timeout = (
                {"connect_timeout": CONNECT_TIMEOUT_S} if parsed.get_backend_name() == "postgresql" else {}
            )
            engine = create_engine(parsed, pool_pre_ping=True, connect_args=timeout)
    except (ArgumentError, NoSuchModuleError, ImportError, OSError) as exc:
        raise UserError(f"database_url: {url!r} cannot be used ({exc})") from None
    _check_connection(engine)
    return engine


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _check_connection(engine: Engine) -> None:
    """Connect once; the driver's first line of complaint goes into the error, the password never."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        where = engine.url.render_as_string(hide_password=True)
        raise UserError(f"database_url: cannot connect to {where} ({reason})") from None


def _sqlite_pragmas(connection, _record) -> None:
    """WAL lets the API read while the worker writes; NORMAL sync is durable across process crashes."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
