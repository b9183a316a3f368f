"""The Postgres adapter's pure parts: placeholder rewriting, the dialect, lock keys."""

from __future__ import annotations

import pytest

from shared.store.base import migrations
from shared.store.postgres import DIALECT, advisory_key, describe, to_pyformat


@pytest.mark.parametrize(
    ("portable", "pyformat"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT '?' AS q, ? AS v", "SELECT '?' AS q, %s AS v"),
        ("SELECT 'it''s ?' WHERE x = ?", "SELECT 'it''s ?' WHERE x = %s"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = %s'),
        ("SELECT a FROM t WHERE b LIKE 'x%' AND ?", "SELECT a FROM t WHERE b LIKE 'x%%' AND %s"),
        ("SELECT 10 % 3, ?", "SELECT 10 %% 3, %s"),
        ("SELECT ? -- why?\n, ?", "SELECT %s -- why?\n, %s"),
        ("SELECT /* a ? b */ ?", "SELECT /* a ? b */ %s"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_question_marks_become_psycopg_placeholders_outside_quotes_and_comments(
    portable: str, pyformat: str
) -> None:
    assert to_pyformat(portable) == pyformat


def test_rewriting_is_cached_per_sql_text() -> None:
    to_pyformat.cache_clear()
    to_pyformat("SELECT ? AS cached")
    to_pyformat("SELECT ? AS cached")
    assert to_pyformat.cache_info().hits == 1


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
