"""Store inputs refused at once with typed errors: store URLs, PostgreSQL DSNs, delivery
queries and retention settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from webhookkit.delivery.records import DeliveryStatus
from webhookkit.exceptions import ConfigurationError, InvalidFieldError
from webhookkit.stores import MemoryStore, PostgresStore, SQLiteStore, open_store, validate_dsn
from webhookkit.stores.base import DeliveryQuery, Retention

GOOD_DSNS = [
    "postgresql://localhost/db",
    "postgres://user:secret@localhost:5432/db",
    "postgresql://user:p%40ss@db.example:6543/app?sslmode=require&application_name=x",
    "postgresql://[::1]:5432/db",
    "postgresql://[fe80::1%25eth0]/db",
    "postgresql://h1:5432,h2:5433/db",
    "postgresql:///db?host=/var/run/postgresql",
    "postgresql://localhost/db?port=5433",
]
BAD_DSNS = [
    "postgresql://[::1",
    "postgresql://[::1/db",
    "postgresql://[zz::1]/db",
    "postgresql://[::1]junk/db",
    "postgresql://h:99999/db",
    "postgresql://h:0/db",
    "postgresql://h:port/db",
    "postgresql://h1,,h2/db",
    "postgresql://h]/db",
    "postgresql://h/db?sslmode",
    "postgresql://h/db?port=x",
    "postgresql://h /db",
    "postgresql://h/db\n",
    "postgresql://h/\x00db",
    "postgresql://h/\udcffdb",
    "postgresql:/h/db",
    "mysql://h/db",
    "postgresql://h/" + "x" * 5000,
    "",
]


@pytest.mark.parametrize("dsn", GOOD_DSNS)
def test_good_dsns_are_accepted(dsn: str) -> None:
    validate_dsn(dsn)
    assert isinstance(open_store(dsn), PostgresStore)


@pytest.mark.parametrize("dsn", BAD_DSNS)
def test_bad_dsns_are_configuration_errors_without_the_password(dsn: str) -> None:
    with_password = dsn.replace("postgresql://", "postgresql://user:hunter2@", 1)
    for candidate in (dsn, with_password):
        with pytest.raises(ConfigurationError, match="store:") as caught:
            validate_dsn(candidate)
        assert caught.value.field == "store"
        assert "hunter2" not in str(caught.value)
        if candidate.startswith(("postgresql://", "postgres://")):
            with pytest.raises(ConfigurationError, match="store:"):
                open_store(candidate)


@pytest.mark.parametrize("dsn", [None, 42, b"postgresql://h/db"])
def test_non_string_dsns_are_refused(dsn: Any) -> None:
    with pytest.raises(ConfigurationError, match="store"):
        validate_dsn(dsn)


async def test_a_dsn_the_validator_accepts_reaches_the_real_server(pg_dsn: str) -> None:
    validate_dsn(pg_dsn)
    connection = await asyncpg.connect(pg_dsn)
    try:
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        await connection.close()


@pytest.mark.parametrize("dsn", ["postgresql://[::1", "postgresql://h/db?sslmode"])
async def test_what_is_refused_asyncpg_would_refuse_too(dsn: str) -> None:
    """(Stricter elsewhere: asyncpg reads ``[::1]:x`` as ``[::1]`` on port 5432.)"""
    with pytest.raises(ConfigurationError):
        validate_dsn(dsn)
    with pytest.raises((ValueError, asyncpg.exceptions.ClientConfigurationError)):
        await asyncpg.connect(dsn, timeout=1)


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/a.db"), SQLiteStore)
    store = MemoryStore()
    assert open_store(store) is store


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///", "redis://h", "memory", "sqlite:///a\x00.db", "sqlite:///\udcff.db"],
)
def test_bad_store_urls(url: str) -> None:
    if url == "memory":
        assert isinstance(open_store(url), MemoryStore)
        return
    with pytest.raises(ConfigurationError, match="store:") as caught:
        open_store(url)
    assert caught.value.field == "store"


@pytest.mark.parametrize("store", [42, b"memory://", object(), ["memory://"]])
def test_objects_that_are_no_store_are_refused(store: Any) -> None:
    with pytest.raises(ConfigurationError, match="store: expected a Store"):
        open_store(store)


# -- DeliveryQuery ---------------------------------------------------------------------------


def test_status_given_as_text_becomes_the_enum() -> None:
    assert DeliveryQuery(status="failed").status is DeliveryStatus.FAILED  # type: ignore[arg-type]
    assert DeliveryQuery(status=DeliveryStatus.PENDING).status is DeliveryStatus.PENDING


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "FAILED"}, "status"),
        ({"status": 1}, "status"),
        ({"status": ["failed"]}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**63}, "offset"),
        ({"offset": 1.0}, "offset"),
        ({"created_after": datetime(2026, 1, 1)}, "created_after"),
        ({"created_before": "2026-01-01"}, "created_before"),
        ({"webhook_id": 42}, "webhook_id"),
        ({"webhook_id": "w\x00"}, "webhook_id"),
        ({"event": "order_created\udcff"}, "event"),
    ],
)
def test_bad_delivery_queries(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError, match=f"{field}:") as caught:
        DeliveryQuery(**fields)
    assert caught.value.field == field


def test_good_delivery_queries() -> None:
    DeliveryQuery(limit=1, offset=0)
    DeliveryQuery(limit=10_000, offset=2**63 - 1)
    DeliveryQuery(created_after=datetime(2026, 1, 1, tzinfo=UTC), event="order_created")


# -- Retention -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval": timedelta(0)}, "interval"),
        ({"interval": timedelta(seconds=-1)}, "interval"),
        ({"interval": timedelta(microseconds=10)}, "interval"),
        ({"interval": 3600}, "interval"),
        ({"interval": timedelta.max}, "interval"),
        ({"keep_failed": timedelta(seconds=-1)}, "keep_failed"),
        ({"keep_failed": None}, "keep_failed"),
        ({"keep_failed": 14}, "keep_failed"),
        ({"keep_failed": timedelta.max}, "keep_failed"),
        ({"keep_success": timedelta(days=-1)}, "keep_success"),
        ({"keep_success": "1d"}, "keep_success"),
    ],
)
def test_bad_retention(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldError, match=f"{field} must") as caught:
        Retention(**fields)
    assert caught.value.field == field


def test_good_retention() -> None:
    Retention()
    Retention(keep_success=timedelta(0), keep_failed=timedelta(0), interval=timedelta(seconds=1))
    Retention(keep_success=timedelta(days=30), keep_failed=timedelta(days=90))
