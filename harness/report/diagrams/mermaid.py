"""Mermaid text for the diagram models, and the parser that reads it back.

Only the subset `model` holds is written or read: a ``title`` in front matter, then
``sequenceDiagram`` with participants, messages, notes and ``rect``/``opt``/``alt``/``else``/
``loop``/``critical``/``break`` blocks, or ``stateDiagram-v2`` with named states, transitions,
``classDef``/``class`` lines and one-line notes. Labels are cleaned of what Mermaid reads as
syntax (``;``, ``#``, line breaks), so what is written always parses, in Mermaid and here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from harness.report.diagrams.model import (
    ARROWS,
    BLOCK_KINDS,
    START,
    Arrow,
    Block,
    BlockKind,
    Item,
    Message,
    Note,
    Participant,
    Sequence,
    State,
    StateDiagram,
    StateNote,
    Transition,
)

INDENT = "    "
KEY = r"[A-Za-z_][A-Za-z0-9_]*"


class MermaidError(ValueError):
    """Text outside the subset this module reads; the message names the line."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")


def clean(text: str) -> str:
    """Text safe in a Mermaid label: no statement separators, entity starts or line breaks."""
    return " ".join(text.replace(";", ",").replace("#", "no. ").replace('"', "'").split())


# -- writing ---------------------------------------------------------------------------------


def _front(title: str) -> list[str]:
    return ["---", f"title: {clean(title)}", "---"] if title else []


def sequence_text(diagram: Sequence) -> str:
    """The diagram as Mermaid ``sequenceDiagram`` text."""
    lines = [*_front(diagram.title), "sequenceDiagram"]
    lines += [f"{INDENT}participant {p.key} as {clean(p.label)}" for p in diagram.participants]
    lines += _items(diagram.items, 1)
    return "\n".join(lines) + "\n"


def _items(items: tuple[Item, ...], depth: int) -> list[str]:
    pad = INDENT * depth
    lines: list[str] = []
    for item in items:
        if isinstance(item, Message):
            lines.append(f"{pad}{item.src}{item.arrow}{item.dst}: {clean(item.text)}")
        elif isinstance(item, Note):
            lines.append(f"{pad}Note over {','.join(item.over)}: {clean(item.text)}")
        else:
            lines.append(f"{pad}{item.kind} {clean(item.label)}".rstrip())
            lines += _items(item.items, depth + 1)
            for label, branch in item.branches:
                lines.append(f"{pad}else {clean(label)}".rstrip())
                lines += _items(branch, depth + 1)
            lines.append(f"{pad}end")
    return lines


def state_text(diagram: StateDiagram) -> str:
    """The diagram as Mermaid ``stateDiagram-v2`` text."""
    lines = [*_front(diagram.title), "stateDiagram-v2", f"{INDENT}direction LR"]
    lines += [f"{INDENT}classDef {name} {style}" for name, style in diagram.styles]
    lines += [f'{INDENT}state "{clean(s.label)}" as {s.key}' for s in diagram.states]
    for t in diagram.transitions:
        label = f": {clean(t.label)}" if t.label else ""
        lines.append(f"{INDENT}{t.src} --> {t.dst}{label}")
    classes: dict[str, list[str]] = {}
    for state in diagram.states:
        if state.css:
            classes.setdefault(state.css, []).append(state.key)
    lines += [f"{INDENT}class {','.join(keys)} {css}" for css, keys in classes.items()]
    lines += [f"{INDENT}note right of {n.state} : {clean(n.text)}" for n in diagram.notes]
    return "\n".join(lines) + "\n"


# -- reading ---------------------------------------------------------------------------------

_PARTICIPANT = re.compile(rf"^(?:participant|actor)\s+({KEY})(?:\s+as\s+(.+))?$")
_MESSAGE = re.compile(
    rf"^({KEY})\s*({'|'.join(re.escape(a) for a in ARROWS)})\s*({KEY})\s*:\s*(.*)$"
)
_NOTE = re.compile(rf"^Note\s+over\s+({KEY}(?:\s*,\s*{KEY})?)\s*:\s*(.*)$")
_BLOCK = re.compile(rf"^({'|'.join(BLOCK_KINDS)})\b\s*(.*)$")
_STATE = re.compile(rf'^state\s+"([^"]*)"\s+as\s+({KEY})$')
_TRANSITION = re.compile(rf"^({KEY}|\[\*\])\s*-->\s*({KEY}|\[\*\])\s*(?::\s*(.*))?$")
_CLASSDEF = re.compile(rf"^classDef\s+({KEY})\s+(.+)$")
_CLASS = re.compile(rf"^class\s+({KEY}(?:\s*,\s*{KEY})*)\s+({KEY})$")
_STATE_NOTE = re.compile(rf"^note\s+(?:right|left)\s+of\s+({KEY})\s*:\s*(.*)$")


def _lines(text: str) -> tuple[str, list[tuple[int, str]]]:
    """The front matter's title and the other non-blank, non-comment lines, numbered."""
    numbered = [(n, raw.strip()) for n, raw in enumerate(text.splitlines(), start=1)]
    title = ""
    if numbered and numbered[0][1] == "---":
        end = next((i for i, (_, line) in enumerate(numbered[1:], 1) if line == "---"), None)
        if end is None:
            raise MermaidError(1, "front matter never closed with ---")
        for _, line in numbered[1:end]:
            if line.startswith("title:"):
                title = line[6:].strip()
        numbered = numbered[end + 1 :]
    return title, [(n, line) for n, line in numbered if line and not line.startswith("%%")]


@dataclass
class _Frame:
    """A block being read: its items so far, and its finished ``else`` branches."""

    kind: BlockKind
    label: str
    items: list[Item] = field(default_factory=list)
    first: list[Item] | None = None
    branches: list[tuple[str, tuple[Item, ...]]] = field(default_factory=list)
    branch: str | None = None

    def otherwise(self, label: str) -> None:
        if self.branch is None:
            self.first = self.items
        else:
            self.branches.append((self.branch, tuple(self.items)))
        self.items, self.branch = [], label

    def close(self) -> Block:
        self.otherwise("")
        first = self.first if self.first is not None else []
        return Block(self.kind, self.label, tuple(first), tuple(self.branches))


def parse_sequence(text: str) -> Sequence:
    """The sequence diagram a text holds, or a `MermaidError` naming the first bad line."""
    title, lines = _lines(text)
    if not lines or lines[0][1] != "sequenceDiagram":
        raise MermaidError(lines[0][0] if lines else 1, "not a sequenceDiagram")
    participants: list[Participant] = []
    stack: list[_Frame] = []
    top: list[Item] = []
    for number, line in lines[1:]:
        here = stack[-1].items if stack else top
        if match := _PARTICIPANT.match(line):
            participants.append(Participant(match[1], (match[2] or match[1]).strip()))
        elif match := _MESSAGE.match(line):
            _known(number, participants, match[1], match[3])
            here.append(Message(match[1], match[3], match[4].strip(), cast(Arrow, match[2])))
        elif match := _NOTE.match(line):
            over = tuple(key.strip() for key in match[1].split(","))
            _known(number, participants, *over)
            here.append(Note(over, match[2].strip()))
        elif match := _BLOCK.match(line):
            stack.append(_Frame(cast(BlockKind, match[1]), match[2].strip()))
        elif line == "else" or line.startswith("else "):
            if not stack or stack[-1].kind != "alt":
                raise MermaidError(number, "else outside an alt block")
            stack[-1].otherwise(line[4:].strip())
        elif line == "end":
            if not stack:
                raise MermaidError(number, "end without a block")
            block = stack.pop().close()
            (stack[-1].items if stack else top).append(block)
        else:
            raise MermaidError(number, f"not understood: {line!r}")
    if stack:
        raise MermaidError(lines[-1][0], f"{stack[-1].kind} block never ended")
    return Sequence(title, tuple(participants), tuple(top))


def _known(number: int, participants: list[Participant], *keys: str) -> None:
    names = {p.key for p in participants}
    for key in keys:
        if key not in names:
            raise MermaidError(number, f"{key} is not a declared participant")


def parse_state(text: str) -> StateDiagram:
    """The state diagram a text holds, or a `MermaidError` naming the first bad line."""
    title, lines = _lines(text)
    if not lines or lines[0][1] != "stateDiagram-v2":
        raise MermaidError(lines[0][0] if lines else 1, "not a stateDiagram-v2")
    states: dict[str, State] = {}
    transitions: list[Transition] = []
    notes: list[StateNote] = []
    styles: list[tuple[str, str]] = []
    for number, line in lines[1:]:
        if line.startswith("direction "):
            continue
        if match := _CLASSDEF.match(line):
            styles.append((match[1], match[2].strip()))
        elif match := _STATE.match(line):
            states[match[2]] = State(match[2], match[1])
        elif match := _TRANSITION.match(line):
            for key in (match[1], match[2]):
                if key != START and key not in states:
                    states[key] = State(key, key)
            transitions.append(Transition(match[1], match[2], (match[3] or "").strip()))
        elif match := _CLASS.match(line):
            for key in (k.strip() for k in match[1].split(",")):
                if key not in states:
                    raise MermaidError(number, f"class for an unknown state {key}")
                states[key] = State(key, states[key].label, match[2])
        elif match := _STATE_NOTE.match(line):
            notes.append(StateNote(match[1], match[2].strip()))
        else:
            raise MermaidError(number, f"not understood: {line!r}")
    return StateDiagram(
        title, tuple(states.values()), tuple(transitions), tuple(notes), tuple(styles)
    )
