"""Who may change a saga: cross-site checks, a per-session CSRF token, the operator token.

- Every page gets a session cookie (random, HttpOnly, SameSite=Strict); each form carries a
  CSRF token derived from it with a per-process key, so another site cannot forge a POST.
- A POST whose ``Origin`` is not this monitor, or that the browser marks as cross-site
  (``Sec-Fetch-Site``), is refused before anything else is read.
- On loopback the ``Host`` must be a loopback name or address (``localhost``, any
  ``127.x.x.x``, ``::1``): a DNS-rebinding page reaches us under a name of its own, never an
  address literal.
- Listening beyond loopback, actions also need an operator's token (``SAGA_MONITOR_OPERATORS``,
  or ``SAGA_MONITOR_TOKEN`` for one operator; a form field, or ``Authorization: Bearer``);
  without one set there, the monitor is read-only. The token names who acts: the action is
  recorded as that operator, whatever name a form says. On loopback the monitor trusts the
  machine (anyone on it may act) and records the name typed, unless a token names someone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from monitor.settings import LOOPBACK_HOSTS

SESSION_COOKIE = "saga_monitor_session"
SHARED_TOKEN_OPERATOR = "operator"
"""Whom ``SAGA_MONITOR_TOKEN`` (one token, no name) records an action as."""
_SAME_SITE = frozenset({"same-origin", "none"})


class Refused(PermissionError):
    """A request that may not act; its message is the one line the user sees (403)."""


class WrongHost(PermissionError):
    """A request addressed to a name this loopback monitor does not answer to (400)."""


@dataclass
class Guard:
    """The checks for one running monitor (its key lives as long as the process)."""

    loopback: bool
    token: str | None = None
    operators: Mapping[str, str] = field(default_factory=dict)
    """Each operator's name and token: the token a request carries says who acts."""
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def tokens(self) -> dict[str, str]:
        """Every operator token, by operator name (``SAGA_MONITOR_TOKEN`` as ``operator``)."""
        found = dict(self.operators)
        if self.token is not None:
            found.setdefault(SHARED_TOKEN_OPERATOR, self.token)
        return found

    @property
    def read_only(self) -> bool:
        """Beyond loopback without a token nobody may act."""
        return not self.loopback and not self.tokens

    @property
    def needs_token(self) -> bool:
        return not self.loopback and bool(self.tokens)

    def new_session(self) -> str:
        return secrets.token_urlsafe(24)

    def csrf_for(self, session: str) -> str:
        return hmac.new(self.key, session.encode(), hashlib.sha256).hexdigest()

    def check_host(self, request: Request) -> None:
        if not self.loopback:
            return
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if not is_loopback_name(host):
            raise WrongHost(f"host {host[:60]!r} is not this monitor; open it at 127.0.0.1")

    def check_post(
        self, request: Request, form_csrf: str | None, form_token: str | None
    ) -> str | None:
        """Refuse cross-site, forged or unauthorised actions, in that order; the operator a
        valid token names (None on loopback without one: the name typed is all there is)."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in _SAME_SITE:
            raise Refused(f"cross-site request refused (Sec-Fetch-Site: {site[:20]})")
        origin = request.headers.get("origin")
        if origin is not None and origin != _own_origin(request):
            raise Refused(f"request from another origin refused ({origin[:80]})")
        session = request.cookies.get(SESSION_COOKIE)
        if (
            not session
            or not form_csrf
            or not hmac.compare_digest(self.csrf_for(session), form_csrf)
        ):
            raise Refused("missing or stale form token; reload the page and try again")
        if self.read_only:
            raise Refused(
                "read-only: set SAGA_MONITOR_OPERATORS (or SAGA_MONITOR_TOKEN) to act when"
                " listening beyond loopback"
            )
        operator = self._operator(request, form_token)
        if self.needs_token and operator is None:
            raise Refused("operator token missing or wrong (SAGA_MONITOR_OPERATORS)")
        return operator

    def _operator(self, request: Request, form_token: str | None) -> str | None:
        """The operator whose token the request carries (a header, or the form's field)."""
        header = request.headers.get("authorization", "")
        bearer = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        given = (bearer or (form_token or "")).encode()
        found = None
        for name, token in self.tokens.items():  # every token compared: no early exit
            if hmac.compare_digest(given, token.encode()) and found is None:
                found = name
        return found


def is_loopback_name(host: str) -> bool:
    """``localhost`` or a loopback address literal (the whole 127.0.0.0/8, ``::1``)."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"
