"""Server settings are parsed before anything starts: a malformed one is one InvalidInput."""

from __future__ import annotations

import pytest

from harness.deploy.preflight import nats_servers, temporal_target
from shared.validation import InvalidInput


def test_nats_urls_split_on_commas_with_default_ports() -> None:
    assert nats_servers("nats://a:4223, tls://b ,c:5000") == [
        ("nats", "a", 4223),
        ("tls", "b", 4222),
        ("nats", "c", 5000),
    ]


@pytest.mark.parametrize(
    "url", ["nats://a:port", "http://a:4222", "nats://", " , ", "nats://a b:4222", "nats://a:70000"]
)
def test_a_malformed_nats_url_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(InvalidInput, match="SAGA_NATS_URL"):
        nats_servers(url)


def test_a_temporal_address_is_host_and_port() -> None:
    assert temporal_target("temporal:7233") == ("temporal", 7233)
    assert temporal_target("[::1]:7233") == ("::1", 7233)


@pytest.mark.parametrize(
    "address", ["localhost", "http://localhost:7233", ":7233", "a:0", "a:99999", "a b:7233"]
)
def test_a_malformed_temporal_address_is_refused_naming_the_variable(address: str) -> None:
    with pytest.raises(InvalidInput, match=r"SAGA_TEMPORAL_ADDRESS=.* is not HOST:PORT"):
        temporal_target(address)
