"""The diagram models: a sequence diagram (participants, messages, notes, blocks) and a state
diagram (states with a class, transitions, notes), in the subset of Mermaid this project writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Arrow = Literal["->>", "-->>", "-x", "--x", "-)", "--)"]
"""Mermaid's arrows: call, reply, failed call, failed reply, event sent, event answered."""
ARROWS: tuple[Arrow, ...] = ("-->>", "--x", "--)", "->>", "-x", "-)")
"""Longest first, so that parsing ``-->>`` never stops at ``->>``."""
BlockKind = Literal["rect", "opt", "alt", "loop", "critical", "break"]
BLOCK_KINDS: tuple[BlockKind, ...] = ("rect", "opt", "alt", "loop", "critical", "break")


@dataclass(frozen=True)
class Participant:
    key: str
    label: str


@dataclass(frozen=True)
class Message:
    src: str
    dst: str
    text: str
    arrow: Arrow = "->>"


@dataclass(frozen=True)
class Note:
    """A note over one participant, or spanning from the first to the second."""

    over: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Block:
    """A frame around items: ``rect`` takes a colour as its label, the others a title;
    ``alt`` may have ``else`` branches, each a title and its items."""

    kind: BlockKind
    label: str
    items: tuple[Item, ...]
    branches: tuple[tuple[str, tuple[Item, ...]], ...] = ()


Item = Message | Note | Block


@dataclass(frozen=True)
class Sequence:
    title: str
    participants: tuple[Participant, ...]
    items: tuple[Item, ...]

    def walk(self) -> list[Item]:
        """Every item, blocks' contents included, in reading order."""
        found: list[Item] = []

        def visit(items: tuple[Item, ...]) -> None:
            for item in items:
                found.append(item)
                if isinstance(item, Block):
                    visit(item.items)
                    for _, branch in item.branches:
                        visit(branch)

        visit(self.items)
        return found


START = "[*]"


@dataclass(frozen=True)
class State:
    key: str
    label: str
    css: str = ""


@dataclass(frozen=True)
class Transition:
    src: str
    dst: str
    label: str = ""


@dataclass(frozen=True)
class StateNote:
    state: str
    text: str


@dataclass(frozen=True)
class StateDiagram:
    title: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    notes: tuple[StateNote, ...] = ()
    styles: tuple[tuple[str, str], ...] = ()
    """``classDef`` name and Mermaid style (``fill:#..,stroke:#..``), for Mermaid's own drawing."""
