"""The Postgres adapter's pure parts: placeholder rewriting, the dialect, lock keys."""

from __future__ import annotations

import pytest

from shared.store.base import migrations
from shared.store.postgres import advisory_key, describe
from shared.store.postgres_tx import DIALECT, to_numbered


@pytest.mark.parametrize(
    ("portable", "numbered"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"),
        ("SELECT '?' AS q, ? AS v", "SELECT '?' AS q, $1 AS v"),
        ("SELECT 'it''s ?' WHERE x = ?", "SELECT 'it''s ?' WHERE x = $1"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = $1'),
        ("SELECT a FROM t WHERE b LIKE 'x%' AND ?", "SELECT a FROM t WHERE b LIKE 'x%' AND $1"),
        ("SELECT 10 % 3, ?", "SELECT 10 % 3, $1"),
        ("SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"),
        ("SELECT /* a ? b */ ?", "SELECT /* a ? b */ $1"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_question_marks_become_numbered_placeholders_outside_quotes_and_comments(
    portable: str, numbered: str
) -> None:
    assert to_numbered(portable) == numbered


def test_rewriting_is_cached_per_sql_text() -> None:
    to_numbered.cache_clear()
    to_numbered("SELECT ? AS cached")
    to_numbered("SELECT ? AS cached")
    assert to_numbered.cache_info().hits == 1


def test_the_dialect_spells_postgres() -> None:
    assert DIALECT.greatest("a", "b", "c") == "greatest(a, b, c)"
    assert DIALECT.skip_locked() == " FOR UPDATE SKIP LOCKED"
    script = "CREATE TABLE t (id {id}, body {blob}); CREATE INDEX i ON t (id)"
    (migration,) = migrations("m", script)
    assert migration.statements(DIALECT) == [
        "CREATE TABLE t (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body BYTEA)",
        "CREATE INDEX i ON t (id)",
    ]


def test_advisory_keys_are_stable_signed_64_bit_and_distinct_per_part() -> None:
    key = advisory_key("run", "inventory", "saga-1")
    assert key == -7317082804720792960  # pinned: every process and release must agree
    assert -(2**63) <= key < 2**63
    assert key != advisory_key("run", "payment", "saga-1")
    assert advisory_key("run", "ab", "c") != advisory_key("run", "a", "bc")


def test_urls_are_described_without_their_password() -> None:
    described = describe("postgresql://saga:secret@db.example:6543/shop")
    assert described == "db.example:6543/shop"
