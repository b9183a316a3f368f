"""Order files and settings that cannot be used become one line naming the field and the fix."""

from __future__ import annotations

import json

import pytest

from shared.errors import InvalidOrder
from shared.validation import (
    MAX_ORDER_FILE_BYTES,
    InvalidInput,
    decode_order,
    load_settings,
    parse_order,
)

ORDER = {
    "order_id": "v-1",
    "customer_id": "alice",
    "items": [{"product_id": "widget", "quantity": 1, "unit_price_cents": 1999}],
    "payment_method": "card-4242",
    "shipping_address": {
        "name": "Zoë",
        "street": "1 Main St",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    },
}


def test_utf8_with_or_without_a_byte_order_mark_decodes() -> None:
    text = json.dumps(ORDER, ensure_ascii=False)
    assert decode_order(text.encode()) == text
    assert decode_order(b"\xef\xbb\xbf" + text.encode()) == text


def test_latin1_bytes_are_refused_naming_the_byte_and_its_offset() -> None:
    data = json.dumps(ORDER, ensure_ascii=False).encode("latin-1")
    offset = data.index(b"\xeb")

    with pytest.raises(InvalidOrder, match=rf"not UTF-8 text \(byte 0xeb at offset {offset}\)"):
        decode_order(data)


def test_an_order_file_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(InvalidOrder, match="larger than"):
        decode_order(b" " * (MAX_ORDER_FILE_BYTES + 1))


def test_a_number_with_thousands_of_digits_is_refused_naming_its_field() -> None:
    text = json.dumps(ORDER).replace('"v-1"', "9" * 5000)

    with pytest.raises(InvalidOrder, match=r"^order_id: is a 5000-digit number"):
        parse_order(text)


def test_json_nested_past_the_parsers_limit_is_refused() -> None:
    with pytest.raises(InvalidOrder, match="nests JSON too deeply"):
        parse_order("[" * 100_000 + "]" * 100_000)


def test_nan_is_refused_as_not_a_json_number() -> None:
    with pytest.raises(InvalidOrder, match="NaN, which is not a JSON number"):
        parse_order(json.dumps({**ORDER, "points_to_use": float("nan")}))


def test_a_bad_setting_names_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_NATS_REPLICAS", "2")

    with pytest.raises(InvalidInput, match=r"^SAGA_NATS_REPLICAS='2': .*; fix it or unset it$"):
        load_settings()


def test_a_key_given_twice_inside_a_nested_object_is_refused_naming_it() -> None:
    text = json.dumps(ORDER).replace('"quantity": 1,', '"quantity": 1, "quantity": 100,')

    with pytest.raises(InvalidOrder, match="the key 'quantity' twice"):
        parse_order(text)


@pytest.mark.parametrize(
    "url",
    ["postgresql://app@db:5432/shop", "postgres://app:pw@127.0.0.1/shop", "postgresql:///shop"],
)
def test_a_postgres_url_is_taken(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SAGA_POSTGRES_URL", url)

    assert load_settings().postgres_url == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("notaurl", "'notaurl'"),
        ("mysql://app:secret@db/shop", "'mysql://app:***@db/shop'"),
        ("postgresql://db:port/shop", "'postgresql://db:port/shop'"),
    ],
)
def test_a_url_that_is_not_postgres_is_refused_without_echoing_its_password(
    monkeypatch: pytest.MonkeyPatch, url: str, shown: str
) -> None:
    monkeypatch.setenv("SAGA_POSTGRES_URL", url)

    with pytest.raises(InvalidInput) as refused:
        load_settings()

    assert str(refused.value) == (
        f"SAGA_POSTGRES_URL={shown}: not a Postgres URL; use "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE; fix it or unset it"
    )
