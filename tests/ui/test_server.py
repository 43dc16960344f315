"""The dashboard binds to loopback freely and to anything else only behind a login."""

from __future__ import annotations

import pytest

from ui.server import PASSWORD_ENV, USER_ENV, ServeError, access, free_port, is_loopback


@pytest.mark.parametrize(("host", "loop"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("192.168.1.10", False), ("example.com", False),
])  # fmt: skip
def test_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_loopback_needs_no_login_but_honours_one() -> None:
    assert access("127.0.0.1", {}).basic_auth is None
    assert access("127.0.0.1", {PASSWORD_ENV: "s3cret"}).basic_auth == {"v6": "s3cret"}


def test_another_address_is_refused_without_credentials() -> None:
    with pytest.raises(ServeError, match=f"refusing to serve on 0.0.0.0.*{PASSWORD_ENV}"):
        access("0.0.0.0", {})
    who = access("0.0.0.0", {PASSWORD_ENV: "s3cret", USER_ENV: "desk"})
    assert who.basic_auth == {"desk": "s3cret"}


def test_free_port_is_on_loopback() -> None:
    assert 0 < free_port() < 65536
