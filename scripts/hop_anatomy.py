"""Where one choreography saga's time goes, hop by hop, from the spans of a run.

Reads an OTLP/JSON trace file (one ``ExportTraceServiceRequest`` a line: what
``saga-compare bench --keep-traces`` writes) and, for every saga whose trace is complete, splits
its critical path from the harness's root span into segments:

- ``front``: root start -> the place command's ``send`` start (admission, command built);
- per message: ``send`` (the publish, until JetStream's ack), ``deliver`` (send end -> the
  consumer's ``process`` start: broker, fetch, lane), ``process`` (the handler and its store
  transaction, then the ack), ``relay`` (the producing span's end -> the next ``send``
  start: hand-over to the outbox relay, its claim, until it publishes);
- ``end``: the last ``send`` end -> root end (the end notice, the tracker's fold, the wait).

Prints, per hop in path order, the median and p90 of each segment over the sagas, then the
sums of the medians by kind against the median root span. Usage:
``python scripts/hop_anatomy.py TRACES.jsonl[.gz] ... [--tag T] [--json]``: several files pool
their sagas (interleaved runs of one build); ``--tag``: only sagas whose id ends in -T, else
each file's run with the most sagas (which leaves out the warm-ups).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT_PREFIX = "saga "
SEND = "send "
PROCESS = "process "
ROOT_ROW = "saga (root span)"
KINDS = ("relay", "send", "deliver", "process")
"""A hop's segments, in path order."""


@dataclass(frozen=True)
class Span:
    trace: str
    span_id: str
    parent: str
    name: str
    start: int
    end: int
    saga: str

    @property
    def ms(self) -> float:
        return (self.end - self.start) / 1e6


def read_spans(path: Path) -> Iterator[Span]:
    """Every span of the file (each line one OTLP/JSON export request)."""
    gz = path.suffix == ".gz"
    with gzip.open(path, "rt", encoding="utf-8") if gz else path.open(encoding="utf-8") as stream:
        for line in filter(str.strip, stream):
            for resource in json.loads(line).get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    for raw in scope.get("spans", []):
                        yield _span(raw)


def _span(raw: dict[str, Any]) -> Span:
    attributes = {
        item["key"]: next(iter(item.get("value", {}).values()), None)
        for item in raw.get("attributes", [])
    }
    return Span(
        trace=raw["traceId"],
        span_id=raw["spanId"],
        parent=raw.get("parentSpanId", ""),
        name=raw["name"],
        start=int(raw["startTimeUnixNano"]),
        end=int(raw["endTimeUnixNano"]),
        saga=str(attributes.get("saga.id", "")),
    )


def run_tag(saga_id: str) -> str:
    """The run's tag: what follows the order's own id (``b7-34ddcaf8`` -> ``34ddcaf8``)."""
    return saga_id.rsplit("-", 1)[-1]


def message(name: str) -> str:
    """``send saga.order.placed.{saga_id}`` -> ``order.placed`` (the hop's label)."""
    subject = name.split(" ", 1)[1].removesuffix(".{saga_id}")
    return subject.removeprefix("saga.").removeprefix("front.")


def anatomy(spans: list[Span]) -> list[tuple[str, float]] | None:
    """One saga's critical path as (segment, ms) in path order; None if the trace is not a
    single chain of sends and processes under one root."""
    roots = [s for s in spans if s.name.startswith(ROOT_PREFIX) and not s.parent]
    sends = sorted((s for s in spans if s.name.startswith(SEND)), key=lambda s: s.start)
    if len(roots) != 1 or not sends:
        return None
    root = roots[0]
    by_id = {s.span_id: s for s in spans}
    processes = {s.parent: s for s in spans if s.name.startswith(PROCESS)}
    segments = [("front", (sends[0].start - root.start) / 1e6)]
    for send in sends:
        hop = message(send.name)
        producer = by_id.get(send.parent)
        if producer is not None and producer is not root:
            segments.append((f"{hop}: relay", (send.start - producer.end) / 1e6))
        segments.append((f"{hop}: send", send.ms))
        process = processes.get(send.span_id)
        if process is not None:
            segments.append((f"{hop}: deliver", (process.start - send.end) / 1e6))
            segments.append((f"{hop}: process", process.ms))
    segments.append(("end", (root.end - sends[-1].end) / 1e6))
    segments.append((ROOT_ROW, root.ms))
    return segments


def sagas(spans: Iterable[Span], tag: str | None) -> list[list[tuple[str, float]]]:
    """The anatomy of every complete saga of the run (``tag``, else the largest run)."""
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        traces[span.trace].append(span)
    saga_of = {
        trace: next((s.saga for s in group if s.name.startswith(ROOT_PREFIX)), "")
        for trace, group in traces.items()
    }
    if tag is None:
        counts = Counter(run_tag(saga) for saga in saga_of.values() if saga)
        tag = counts.most_common(1)[0][0] if counts else ""
    found = []
    for trace, group in traces.items():
        if saga_of[trace] and run_tag(saga_of[trace]) == tag:
            path = anatomy(group)
            if path is not None:
                found.append(path)
    return found


def table(paths: list[list[tuple[str, float]]]) -> list[dict[str, Any]]:
    """Median and p90 of each segment, in the path order of the first saga."""
    values: dict[str, list[float]] = defaultdict(list)
    order: list[str] = []
    for path in paths:
        for segment, ms in path:
            if segment not in values:
                order.append(segment)
            values[segment].append(ms)
    rows = []
    for segment in order:
        series = sorted(values[segment])
        p90 = series[min(len(series) - 1, int(0.9 * len(series)))]
        rows.append(
            {"segment": segment, "n": len(series), "p50": statistics.median(series), "p90": p90}
        )
    return rows


def render(rows: list[dict[str, Any]], sagas_seen: int) -> str:
    """One line per hop (p50 / p90 ms of each kind of segment), then the sums of medians."""
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    sums: dict[str, float] = defaultdict(float)
    hops: list[str] = []
    for row in rows:
        hop, _, kind = row["segment"].rpartition(": ")
        if hop and hop not in hops:
            hops.append(hop)
        cells[hop or kind][kind] = f"{row['p50']:.1f} / {row['p90']:.1f}"
        if row["segment"] != ROOT_ROW:
            sums[kind] += row["p50"]
    lines = [
        f"{sagas_seen} sagas; p50 / p90 ms of each segment of the critical path",
        "",
        "| hop | " + " | ".join(KINDS) + " |",
        "|---" * (len(KINDS) + 1) + "|",
    ]
    for hop in hops:
        lines.append(f"| {hop} | " + " | ".join(cells[hop].get(k, "-") for k in KINDS) + " |")
    lines += [
        "",
        f"front (root start -> the place command's send): {cells['front']['front']} ms",
        f"end (the last send's end -> root end): {cells['end']['end']} ms",
        f"saga (root span): {cells[ROOT_ROW][ROOT_ROW]} ms",
        "sums of medians: " + ", ".join(f"{k} {v:.1f}" for k, v in sums.items()) + " ms",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("traces", type=Path, nargs="+")
    parser.add_argument("--tag", help="only sagas whose id ends in -TAG")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args(argv)
    paths: list[list[tuple[str, float]]] = []
    for traces in args.traces:
        if not traces.is_file():
            print(
                f"error: {traces} is not a file; pass trace files (.jsonl or .jsonl.gz)",
                file=sys.stderr,
            )
            return 2
        found = sagas(read_spans(traces), args.tag)
        if not found:
            print(f"error: no complete saga trace in {traces}", file=sys.stderr)
            return 2
        paths += found
    rows = table(paths)
    print(
        json.dumps({"sagas": len(paths), "segments": rows}, indent=2)
        if args.json
        else render(rows, len(paths))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
