"""Serve the dashboard: loopback by default; any other address only behind a password.

`v6 dashboard` calls `serve`. Binding to an address other than loopback exposes trading data
to the network, so it needs basic-auth credentials from the environment
(`V6_DASHBOARD_PASSWORD`, optional `V6_DASHBOARD_USER`, default `v6`): never from a file in
the repository, never on the command line, where `ps` would show them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD_ENV, USER_ENV = "V6_DASHBOARD_PASSWORD", "V6_DASHBOARD_USER"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5006


class ServeError(ValueError):
    """A dashboard that must not or cannot start: the message says what to do."""


@dataclass(frozen=True)
class Access:
    host: str
    basic_auth: dict[str, str] | None  # None: loopback only, no login


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access(host: str, env: dict[str, str] | os._Environ[str] = os.environ) -> Access:
    """Who may connect: loopback freely; another address only with credentials."""
    password = env.get(PASSWORD_ENV)
    if is_loopback(host):
        return Access(host, {env.get(USER_ENV, "v6"): password} if password else None)
    if not password:
        raise ServeError(
            f"refusing to serve on {host}: it is not loopback, and the dashboard shows trading "
            f"data. Set {PASSWORD_ENV} (and optionally {USER_ENV}) in the environment to "
            "require a login, or serve on 127.0.0.1"
        )
    return Access(host, {env.get(USER_ENV, "v6"): password})


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def serve(
    make_app: Callable[[], Any],
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    title: str = "V6",
    on_start: Callable[[str], None] | None = None,
) -> None:
    """Serve `make_app()` (one app per browser session) until interrupted."""
    import panel as pn

    who = access(host)
    url = f"http://{host}:{port}/"
    server = pn.serve(
        {"/": make_app},
        port=port,
        address=host,
        websocket_origin=[f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"],
        show=False,
        start=False,
        title=title,
        basic_auth=who.basic_auth,
        cookie_secret=os.urandom(32).hex() if who.basic_auth else None,
    )
    if on_start is not None:
        on_start(url)
    server.start()
    server.io_loop.start()


def journal_path(text: str | None) -> Path | None:
    return None if text is None else Path(text).expanduser()
