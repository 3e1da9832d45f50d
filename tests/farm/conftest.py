"""Fixtures of the build-farm tests: one private PostgreSQL cluster per test session, a fresh
database per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from imagebuild_nb.farm.store import FarmStore
from tests.support.farm import AgentProcess
from tests.support.postgres import PostgresCluster
from tests.support.services import remove_images_tagged


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster.start_new() as cluster:
        yield cluster


@pytest.fixture
def database_url(postgres: PostgresCluster) -> str:
    return postgres.create_database()


@pytest.fixture
def farm_store(database_url: str) -> Iterator[FarmStore]:
    store = FarmStore(database_url, context_grace=0.0)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def agents(database_url: str, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(engine: str, **options: object) -> AgentProcess:
        agent = AgentProcess(database_url, engine, tmp_path, **options)  # type: ignore[arg-type]
        started.append(agent.start())
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture(scope="package", autouse=True)
def remove_built_images(docker_client: docker.DockerClient) -> Iterator[None]:
    """Agents on the shared engine build there: the package's images (all named ibnb-farm/...)
    go when it ends. They stay in the registry, under unique names."""
    yield
    remove_images_tagged(docker_client, lambda tag: "/ibnb-farm/" in tag)
