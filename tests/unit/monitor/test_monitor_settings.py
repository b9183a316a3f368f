"""The monitor's settings: what an operator may set, and what is refused in one line."""

from __future__ import annotations

import pytest

from monitor.settings import is_loopback, load_monitor_settings


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_MONITOR_TOKEN", "")
    monkeypatch.setenv("SAGA_MONITOR_TRACE_URL", "")

    settings = load_monitor_settings()

    assert (settings.token, settings.trace_url) == (None, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAGA_MONITOR_TOKEN", "short"),
        ("SAGA_MONITOR_TRACE_URL", "http://jaeger/trace/"),
        ("SAGA_MONITOR_TEMPORAL_UI_URL", "javascript:alert(1)"),
        ("SAGA_MONITOR_STUCK_AFTER_S", "0"),
        ("SAGA_MONITOR_REFRESH_MS", "10"),
        ("SAGA_MONITOR_OPERATORS", '{"ann": "short"}'),
        ("SAGA_MONITOR_OPERATORS", "ann=0123456789abcdef"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValueError, match=f"^{name}: .*; fix it or unset it$"):
        load_monitor_settings()


def test_only_loopback_addresses_count_as_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.0.2.1", "monitor.example"))


def test_each_operator_is_named_with_a_token_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = '{"ann": "ann-token-0123456789", "bo": "bo-token-0123456789"}'
    monkeypatch.setenv("SAGA_MONITOR_OPERATORS", tokens)

    settings = load_monitor_settings()

    assert settings.operators == {"ann": "ann-token-0123456789", "bo": "bo-token-0123456789"}


def test_no_operators_given_as_an_empty_variable_means_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGA_MONITOR_OPERATORS", "")  # as compose passes an unset variable

    assert load_monitor_settings().operators == {}
