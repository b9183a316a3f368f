"""Turn user input (an order file, the settings) into contracts, or one line naming the fix.

Everything a user can hand the command line ends here first, so a bad input becomes one
`InvalidOrder` or `InvalidInput` line instead of a traceback: bytes that are not UTF-8,
numbers with thousands of digits, JSON nested past the parser's recursion limit, an order
file the size of a disk, a settings variable of the wrong shape.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from shared.contracts import OrderRequest
from shared.errors import InvalidOrder
from shared.settings import Settings, redacted_url

MAX_ORDER_FILE_BYTES = 1_000_000
"""An order with 100 lines fits in a few kilobytes (the harness's extras too)."""
MAX_NUMBER_DIGITS = 20
"""Every number an order holds fits in 64 bits; a longer literal is never converted to an int
(Python refuses past 4,300 digits), it is kept as a `LongNumber` that fails validation."""


class InvalidInput(ValueError):
    """A flag, environment variable or file that cannot be used; the message names the fix."""


class LongNumber:
    """An integer literal too long for any field, kept unconverted so validation names its field."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<{self.digits}-digit number>"


def describe(error: ValidationError) -> str:
    """The first problem of a validation error as ``field.path: message``."""
    first = error.errors()[0]
    path = ".".join(
        f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
    ).replace(".[", "[")
    message = first["msg"].removeprefix("Value error, ")
    if isinstance(first.get("input"), LongNumber):
        message = (
            f"is a {first['input'].digits}-digit number; no field takes more than "
            f"{MAX_NUMBER_DIGITS} digits"
        )
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] == "extra_forbidden":
        message = "is not a known field; check its spelling"
    return f"{path or 'order'}: {message}"


def decode_order(data: bytes) -> str:
    """An order file's bytes as text: UTF-8 (a byte-order mark is allowed) and not too large."""
    if len(data) > MAX_ORDER_FILE_BYTES:
        raise InvalidOrder(
            f"order file is larger than {MAX_ORDER_FILE_BYTES:,} bytes; "
            "an order file holds one order"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidOrder(
            f"order file is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8 JSON"
        ) from None


def load_order_json(text: str) -> dict[str, Any]:
    """An order file's JSON object; every failure becomes an InvalidOrder with one line."""
    data = _load_json(text)
    if not isinstance(data, dict):
        raise InvalidOrder("order file must hold a JSON object with the order's fields")
    return data


def order_of(data: dict[str, Any]) -> OrderRequest:
    """The order of an order file's fields, or InvalidOrder naming the field and the fix."""
    try:
        return OrderRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidOrder(describe(error)) from None


def parse_order(text: str) -> OrderRequest:
    """An order file's text as an order, or InvalidOrder with one line."""
    return order_of(load_order_json(text))


def _load_json(text: str) -> Any:
    try:
        return json.loads(
            text,
            parse_int=_short_int,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as error:
        raise InvalidOrder(
            f"order file is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from None
    except RecursionError:
        raise InvalidOrder(
            "order file nests JSON too deeply to be an order; an order is one object whose "
            "items are a list of flat objects"
        ) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: JSON parsers keep the last of two values
    silently, so ``"quantity": 1, "quantity": 100`` would place an order nobody read."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise InvalidOrder(
                f"order file has the key {key!r} twice in one object; keep one of its values"
            )
        found[key] = value
    return found


def _short_int(literal: str) -> int | LongNumber:
    digits = len(literal.lstrip("-"))
    return LongNumber(digits) if digits > MAX_NUMBER_DIGITS else int(literal)


def _no_constant(name: str) -> NoReturn:
    raise InvalidOrder(f"order file holds {name}, which is not a JSON number; use a number")


def load_settings() -> Settings:
    """The settings from the environment, or an InvalidInput naming the variable to fix."""
    try:
        return Settings()
    except ValidationError as error:
        raise InvalidInput(describe_setting(Settings, error)) from None


def describe_setting(model: type[BaseSettings], error: ValidationError) -> str:
    """The first bad setting as ``VARIABLE='value': problem; fix it or unset it``."""
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "?"
    field = model.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    prefix = str(model.model_config.get("env_prefix", ""))
    variable = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
    shown = first["input"]
    if isinstance(shown, str) and variable.endswith("_URL"):
        shown = redacted_url(shown)  # never echo a password to the terminal
    message = first["msg"].removeprefix("Value error, ")
    return f"{variable}={shown!r}: {message}; fix it or unset it"
