"""The private cluster the farm tests use: it answers, claims skip locked rows, notifies."""

from __future__ import annotations

import psycopg

from tests.support.postgres import PostgresCluster


def test_the_cluster_is_private_on_loopback_and_skip_locked_works(postgres: PostgresCluster,
                                                                  database_url: str):
    assert "127.0.0.1" in database_url
    with psycopg.connect(database_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE jobs (id int PRIMARY KEY)")
        setup.execute("INSERT INTO jobs VALUES (1), (2)")
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        one = first.execute("SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1"
                            ).fetchone()
        two = second.execute("SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1"
                             ).fetchone()
        assert (one, two) == ((1,), (2,))
