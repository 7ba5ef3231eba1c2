"""Server fixtures: tiny models in a models folder, SQLite and PostgreSQL stores, in-process apps and
real ``videogen serve`` processes on free loopback ports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from server_helpers import ServerProcess
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from videogen.server import JobService, Settings, create_app

#: an admin connection that may create databases; override with VIDEOGEN_TEST_PG_URL
PG_ADMIN_URL = os.environ.get("VIDEOGEN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def models_dir(tiny_unet3d: Path) -> Path:
    """A folder whose only model is ``tiny-unet3d``."""
    return tiny_unet3d.parent


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Jobs run in this process on one thread: a tiny model gains nothing from more, and more
    threads thrash when other processes share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """The admin URL of the PostgreSQL server, or a skip saying why there is none."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL} ({type(exc.orig).__name__})")
    finally:
        engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A throwaway database, dropped after the test."""
    name = f"videogen_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests run on the embedded SQLite store and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(tmp_path: Path, models_dir: Path) -> Settings:
    """An API-only server (no worker) over SQLite; tests ``replace`` what they need."""
    return Settings(data_dir=tmp_path / "data", models_dir=models_dir, run_worker=False, ui=False)


@pytest.fixture
def start_service() -> Iterator[Callable[[Settings], JobService]]:
    """Start JobServices (migrated; worker running if the settings say so), stopped after the test."""
    started: list[JobService] = []

    def start(settings: Settings) -> JobService:
        service = JobService(settings)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """In-process apps: ``make_client(settings)``; the lifespan runs, so the store is migrated."""
    clients: list[TestClient] = []

    def make(settings: Settings, **headers: str) -> TestClient:
        client = TestClient(create_app(settings), headers=headers)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings)


@pytest.fixture
def spawn_server(tmp_path: Path, models_dir: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real servers over ``tmp_path/data``; all are stopped after the test."""
    servers: list[ServerProcess] = []

    def spawn(*options: str) -> ServerProcess:
        server = ServerProcess(tmp_path / "data", models_dir, *options)
        servers.append(server)
        return server.start()

    yield spawn
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[ServerProcess]:
    """One real server shared by a module's tests."""
    server = ServerProcess(tmp_path_factory.mktemp("live") / "data", models_dir).start()
    yield server
    server.stop()
