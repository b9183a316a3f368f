"""Who may say what on the broker: one NATS user per process kind, each with its own subjects.

nats-server runs with an ``authorization`` block (choreography/broker.py starts it with the
file `server_config` writes): a connection without a known user is refused, and every user may
publish and subscribe only what its role needs, derived from the saga definition so a service
a definition adds gets its own user too. A publish outside the list is refused by the server
(``permissions violation``), never delivered, never stored.

- **a service** (``inventory``, ``payment`` ...): its own events, ``saga.<its tokens>.>``;
  its dead letters; its durable's pulls and acks; the set-up every process runs at start
  (stream info, create and update of the saga's streams, durable creation).
- **orders** and **tracker** share the orders store and so its outbox, which either's relay
  may publish: ``saga.order.>``, the operator's retry commands to each service (one kind per
  step, ``saga.payment.retry_compensation.*`` ...), the front door's notices; the tracker also
  answers operator commands on their reply inbox.
- **front** (the harness, any client placing orders): ``front.order.place.*`` and
  ``front.order.cancel.*``, the notices it waits for, reads of the saga stream, and the
  benchmark's floor on a stream of its own (``SAGA_FLOOR``, ``floor.>``) that no service reads.
- **monitor**: operator commands (``operator.<action>_requested.*``, every action
  choreography/operator.py knows) and reads; nobody else may publish them.
- **admin**: the JetStream API (the broker's readiness probe, the embedded runtime's set-up).

A deployment's broker outlives a release: its users are those of the definition it was started
with *and* of every shipped definition that may replace it on the same broker (`line`: those
naming it among their ``earlier``, docs/versioning.md), so an upgrade's new processes — a
service version 2 adds (``fraud``), a later release's own consumer group with dual publishing
(durables ``<kind>-r2``), the tracker's retry commands to the new service — log in without
the broker's configuration changing mid-flight.

Each user's password is random and lives owner-only: in the broker's config, and in one file
per role (`Logins.write`) from which each process of a deployment gets its own.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from choreography import front_door, operator
from choreography.broker import (
    ADVISORY_STREAM,
    DLQ_STREAM,
    SAGA_STREAM,
    BrokerAuth,
    NatsLogin,
)
from choreography.events import HOME, ROOT, Role, Routing, pattern
from choreography.host import TRACKER, ChoreographySettings, kinds_of_process
from choreography.versions import DUAL
from shared.contracts import ServiceName
from shared.definition import SagaDefinition

FRONT = "front"
MONITOR = "monitor"
ADMIN = "admin"
INBOX = "_INBOX.>"
FLOOR_STREAM = "SAGA_FLOOR"
FLOOR_SUBJECTS = "floor.>"
"""The benchmark's floor (harness/bench/floors/choreography.py): a stream no service reads."""
STREAMS = (SAGA_STREAM, DLQ_STREAM, ADVISORY_STREAM)
API = "$JS.API"
COMMAND_ROLES = frozenset(role for role in Role if role.name.startswith("RETRY_"))
"""Kinds the tracker publishes to a service for an operator: commands, not events."""


@dataclass(frozen=True)
class Permissions:
    """The subjects one user may publish to and subscribe to (everything else is refused)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...] = (INBOX,)


def line(definition: SagaDefinition) -> tuple[SagaDefinition, ...]:
    """``definition`` and every shipped definition that may follow it on one broker (naming
    it, or one that follows it, among their ``earlier``), oldest release first."""
    from shared.definitions import shipped

    found = [definition]
    for later in sorted(shipped(), key=lambda d: d.release):
        if later not in found and any(ref in later.earlier for ref in (d.ref for d in found)):
            found.append(later)
    return tuple(found)


def process_kinds(definition: SagaDefinition) -> tuple[str, ...]:
    """Every process kind of ``definition``'s line (its own first)."""
    kinds = (kind for d in line(definition) for kind in kinds_of_process(d))
    return tuple(dict.fromkeys(kinds))


def roles(definition: SagaDefinition) -> tuple[str, ...]:
    """Every user of a deployment of ``definition``: the process kinds of its line, front,
    monitor, admin."""
    return (*process_kinds(definition), FRONT, MONITOR, ADMIN)


def permissions(definition: SagaDefinition, role: str, suffix: str = "") -> Permissions:
    """What ``role`` may do on a broker serving ``definition`` (durables named with ``suffix``)."""
    if role == FRONT:
        return Permissions(_front(), (INBOX, *_notices()))
    if role == MONITOR:
        return Permissions(_monitor())
    if role == ADMIN:
        return Permissions((f"{API}.>",))
    if role not in process_kinds(definition):
        raise ValueError(f"no NATS user for {role!r}; the roles are {', '.join(roles(definition))}")
    publish = [*_setup()]
    for release in line(definition):
        publish += [*_consumers(release, role, suffix), *_events(release, role)]
    if role == TRACKER:
        publish.append(INBOX)  # answers to operator commands, on the caller's inbox
    return Permissions(tuple(dict.fromkeys(publish)))


def _setup() -> list[str]:
    """What every process runs at start: the saga's streams and durables made sure of."""
    found = [f"{API}.INFO"]
    for stream in STREAMS:
        found += [f"{API}.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE")]
    found += [
        f"{API}.CONSUMER.DURABLE.CREATE.{SAGA_STREAM}.*",
        f"{API}.CONSUMER.CREATE.{SAGA_STREAM}.>",
        f"{API}.CONSUMER.INFO.{SAGA_STREAM}.*",
    ]
    return found


def _consumers(definition: SagaDefinition, role: str, suffix: str) -> list[str]:
    """Pulls and acks of the role's own durables (and, from release 2 on, of its release's
    own consumer group, as dual publishing names it), and its dead letters."""
    found = [f"dlq.{role}.>"]
    modes = ("strict", DUAL) if definition.release > 1 else ("strict",)
    for mode in modes:
        settings = ChoreographySettings(consumer_suffix=suffix, event_versioning=mode)
        for spec in settings.specs(Routing(definition)):
            if spec.service == role:
                found += [
                    f"{API}.CONSUMER.MSG.NEXT.{SAGA_STREAM}.{spec.durable}",
                    f"$JS.ACK.{SAGA_STREAM}.{spec.durable}.>",
                ]
    return found


def _events(definition: SagaDefinition, role: str) -> list[str]:
    """The events a role's store may publish: its steps' (and the orders store's notices)."""
    if role in (ServiceName.ORDERS, TRACKER):
        tokens = {HOME, *_tokens(definition, ServiceName.ORDERS)}
        notices = [f"{front_door.REJECTED}.*", f"{front_door.ENDED}.*"]
        own = [f"{ROOT}.{token}.>" for token in sorted(tokens)]
        return [*own, *_operator_retries(definition), *notices]
    return [f"{ROOT}.{token}.>" for token in sorted(_tokens(definition, role))]


def _operator_retries(definition: SagaDefinition) -> list[str]:
    """The tracker's commands to a service on an operator's behalf (a retry), kind by kind."""
    routing = Routing(definition)
    return [
        pattern(kind)
        for kind, meaning in routing.meanings.items()
        if meaning.role in COMMAND_ROLES and meaning.step not in _steps(definition)
    ]


def _steps(definition: SagaDefinition) -> set[str]:
    """The orders service's own steps (its commands are under ``saga.order.>`` already)."""
    return {step.name for step in definition.spec.steps_of(ServiceName.ORDERS)}


def _tokens(definition: SagaDefinition, service: str) -> set[str]:
    return {step.subject_token for step in definition.spec.steps_of(service)}


def _front() -> tuple[str, ...]:
    floor = [
        FLOOR_SUBJECTS,
        f"{API}.STREAM.INFO.{FLOOR_STREAM}",
        f"{API}.STREAM.CREATE.{FLOOR_STREAM}",
        f"{API}.CONSUMER.DURABLE.CREATE.{FLOOR_STREAM}.*",
        f"{API}.CONSUMER.CREATE.{FLOOR_STREAM}.>",
        f"{API}.CONSUMER.DELETE.{FLOOR_STREAM}.*",
        f"{API}.CONSUMER.MSG.NEXT.{FLOOR_STREAM}.*",
        f"$JS.ACK.{FLOOR_STREAM}.>",
    ]
    return (
        f"{front_door.PLACE}.*",
        f"{front_door.CANCEL}.*",
        *_reads(),
        *floor,
    )


def _notices() -> tuple[str, ...]:
    """What a front door waits on (choreography/front_door.py)."""
    return tuple(
        f"{prefix}.*"
        for prefix in (
            front_door.PLACED,
            front_door.REJECTED,
            front_door.COMPLETED,
            front_door.ENDED,
        )
    )


def _monitor() -> tuple[str, ...]:
    """Every operator command (``operator.<action>_requested.*``), and reads."""
    commands = tuple(f"{prefix}.*" for prefix in dict.fromkeys(operator.KINDS.values()))
    return (*commands, *_reads())


def _reads() -> tuple[str, ...]:
    """Reading the saga stream's messages (the monitor's raw list), the durables' state and
    the dead letters (a saga a consumer refused for its definition, which the monitor lists
    and the versioning experiment counts)."""
    return (
        f"{API}.INFO",
        f"{API}.STREAM.INFO.{SAGA_STREAM}",
        f"{API}.STREAM.MSG.GET.{SAGA_STREAM}",
        f"{API}.CONSUMER.INFO.{SAGA_STREAM}.*",
        f"{API}.CONSUMER.LIST.{SAGA_STREAM}",
        f"{API}.STREAM.INFO.{DLQ_STREAM}",
        f"{API}.STREAM.MSG.GET.{DLQ_STREAM}",
    )


def server_config(users: Mapping[str, tuple[str, Permissions]]) -> str:
    """nats-server's ``authorization`` block for these users: role -> (password, permissions).

    A password starting with ``$`` is left unquoted, a reference to an environment variable
    of the server (the compose set-up's); any other is quoted.
    """
    lines = ["# Generated by choreography/access.py: one user per role of the saga.", ""]
    lines += ["authorization {", "  users = ["]
    for role, (password, allowed) in users.items():
        secret = password if password.startswith("$") else json.dumps(password)
        lines += [
            "    {",
            f"      user: {json.dumps(role)}",
            f"      password: {secret}",
            "      permissions: {",
            *_allow("publish", allowed.publish),
            *_allow("subscribe", allowed.subscribe),
            "      }",
            "    }",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def _allow(verb: str, subjects: Iterable[str]) -> list[str]:
    """One permission's allow list, a subject per line."""
    return [
        f"        {verb}: {{ allow: [",
        *(f"          {json.dumps(subject)}" for subject in subjects),
        "        ] }",
    ]


@dataclass(frozen=True)
class Logins:
    """Every user of one broker, with its password: what the server is configured with and
    what each process connects as."""

    definition: SagaDefinition
    passwords: Mapping[str, str]
    suffix: str = ""

    @classmethod
    def generate(cls, definition: SagaDefinition, suffix: str = "") -> Logins:
        """Fresh random passwords for every role of ``definition``."""
        passwords = {role: secrets.token_urlsafe(24) for role in roles(definition)}
        return cls(definition, passwords, suffix)

    @classmethod
    def kept_in(cls, folder: Path, definition: SagaDefinition, suffix: str = "") -> Logins:
        """The logins written in ``folder`` earlier (a deployment's, so an ``up`` after a
        ``down`` keeps them), completed with new ones for roles it lacks; written back."""
        passwords = {}
        for role in roles(definition):
            found = read_login(folder / f"{role}.json")
            passwords[role] = found.password if found else secrets.token_urlsafe(24)
        logins = cls(definition, passwords, suffix)
        logins.write(folder)
        return logins

    def login(self, role: str) -> NatsLogin:
        return NatsLogin(role, self.passwords[role])

    @property
    def by_role(self) -> dict[str, NatsLogin]:
        return {role: self.login(role) for role in self.passwords}

    def config(self) -> str:
        return server_config(
            {
                role: (password, permissions(self.definition, role, self.suffix))
                for role, password in self.passwords.items()
            }
        )

    def auth(self) -> BrokerAuth:
        """What a `NatsBroker` needs: its config, and the login its readiness probe uses."""
        return BrokerAuth(config=self.config(), probe=self.login(ADMIN))

    def write(self, folder: Path) -> None:
        """One file per role, ``<role>.json``, readable by their owner only."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.chmod(0o700)
        for role, password in self.passwords.items():
            write_private(folder / f"{role}.json", json.dumps({"user": role, "password": password}))


def read_login(path: Path) -> NatsLogin | None:
    """A login written by `Logins.write`, or None when there is none."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return NatsLogin(str(found["user"]), str(found["password"]))


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, owner-only from the first byte (no window for others)."""
    partial = path.with_suffix(f".{os.getpid()}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    partial.replace(path)


__all__ = [
    "ADMIN",
    "COMMAND_ROLES",
    "FRONT",
    "MONITOR",
    "Logins",
    "Permissions",
    "compose_config",
    "line",
    "password_variable",
    "permissions",
    "process_kinds",
    "read_login",
    "roles",
    "server_config",
    "write_private",
]


def compose_config(definition: SagaDefinition) -> str:
    """The compose set-up's server config (deploy/nats/saga.conf): every user's password is
    the server's environment variable ``NATS_PASSWORD_<ROLE>``, set from the compose `.env`."""
    return server_config(
        {
            role: (f"${password_variable(role)}", permissions(definition, role))
            for role in roles(definition)
        }
    )


def password_variable(role: str) -> str:
    """The environment variable holding ``role``'s password on a compose NATS node."""
    return f"NATS_PASSWORD_{role.upper().replace('-', '_')}"


def main(argv: list[str] | None = None) -> int:
    """``python -m choreography.access [DEFINITION]``: print the compose set-up's config."""
    from shared.definitions import DEFAULT, definition_named

    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(compose_config(definition_named(args[0] if args else DEFAULT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
