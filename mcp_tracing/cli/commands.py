"""The ``mcp-tracing`` command: ``demo``, ``traces``, ``show``, ``analyze``, ``logs``, ``wrap``, ``collect``, ``ui``.

    mcp-tracing demo                          # run the scripted agent, print its trace
    mcp-tracing traces --errors --since 1h    # recent traces, filtered
    mcp-tracing traces --where total_cost_estimate>1 --where request_id=abc
    mcp-tracing show 4bf92f35                 # one trace as a tree with time bars (a unique id prefix is enough)
    mcp-tracing show                          # the latest trace
    mcp-tracing show 4bf92f35 --html t.html   # the same as a self-contained HTML waterfall
    mcp-tracing --width 100 traces            # lines cut to 100 columns (default: the terminal's width)
    mcp-tracing analyze 4bf92f35              # the bad patterns in one trace
    mcp-tracing analyze --since 1h            # the costliest problems across recent traces
    mcp-tracing logs 4bf92f35                 # the trace's log records in time order, with their span paths
    mcp-tracing wrap -- npx -y @modelcontextprotocol/server-everything   # trace a stdio server as it is
    mcp-tracing collect                       # OTLP/HTTP from any process on 127.0.0.1:4318, into the store
    mcp-tracing ui                            # the store in a browser, on http://127.0.0.1:8318/

``--json`` prints data instead of text. ``--store FILE`` goes before or after the command. Errors are one line on
stderr with exit status 1; bad usage (an unknown option, a bad filter or threshold) exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from mcp_tracing._version import __version__
from mcp_tracing.cli.logs import by_span, log_line, nested_prefix, print_logs
from mcp_tracing.cli.terminal import (
    ERROR,
    FINDING,
    SLOW,
    Line,
    Screen,
    cell_len,
    fit,
    progress,
    service_style,
    status,
)
from mcp_tracing.cli.text import counted, terminal_safe
from mcp_tracing.cli.tree import MAX_LABEL, tree_lines
from mcp_tracing.store import STORE_ENV, StoreError, TraceStore, TraceSummary, Where, parse_duration
from mcp_tracing.store.patterns import LABELS, Finding, Thresholds, analyze, flagged, lost_halves, rank
from mcp_tracing.store.records import SpanRecord

__all__ = ["console", "main"]


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _where(text: str) -> Where:
    try:
        return Where.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-tracing", description="Traces of MCP agents, from the local store.")
    store_help = f"the store file (default: ${STORE_ENV}, or traces.db in the user data dir)"
    parser.add_argument("--store", help=store_help)
    width_help = "columns to fit the output to (default: the terminal's width; not cut when piped)"
    parser.add_argument("--width", type=_columns, help=width_help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # The global flags are accepted after the subcommand too; there they win. SUPPRESS: absent, they leave the
    # value given before the subcommand alone.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
    common.add_argument("--width", type=_columns, default=argparse.SUPPRESS, help=width_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", parents=[common], help="run a scripted agent over two real MCP servers and show its trace"
    )
    demo.add_argument("--json", action="store_true", help="print the spans as JSON")

    traces = commands.add_parser("traces", parents=[common], help="list recent traces")
    traces.add_argument("--errors", action="store_true", help="only traces with an error span")
    traces.add_argument("--slower-than", type=_duration, metavar="DURATION", help="e.g. 500ms, 2s")
    traces.add_argument("--since", type=_duration, metavar="DURATION", help="started within, e.g. 1h, 7d")
    traces.add_argument(
        "--where", type=_where, action="append", default=[], metavar="KEY<op>VALUE", help="span attribute filter"
    )
    traces.add_argument("--search", metavar="TEXT", help="a trace id prefix, or a request id one of its spans has")
    traces.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")
    traces.add_argument("--json", action="store_true", help="print JSON")

    show = commands.add_parser("show", parents=[common], help="draw one trace as a tree, with time bars and findings")
    show.add_argument("trace_id", nargs="?", help="a trace id, or a unique prefix of one (default: the latest trace)")
    show.add_argument("--json", action="store_true", help="print the spans as JSON")
    show.add_argument("--html", metavar="FILE", help="write a self-contained HTML waterfall to FILE")
    show.add_argument(
        "--bars", type=_width, help="characters of time bar (0: none; default: a quarter of the width, 10 to 60)"
    )
    show.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE", help="see analyze")
    show.add_argument(
        "--logs", action=argparse.BooleanOptionalAction, default=True, help="the log records under their spans"
    )

    collect = commands.add_parser(
        "collect", parents=[common], help="receive OTLP/HTTP from any process into the store (127.0.0.1:4318)"
    )
    collect.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    collect.add_argument("--port", type=_port, default=4318, help="port (default 4318, OTLP/HTTP's)")
    collect.add_argument(
        "--max-body", type=_positive, default=32 * 1024 * 1024, metavar="BYTES", help="body size limit (32 MiB)"
    )
    collect.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on an address other than loopback: anyone who reaches it can write into your store",
    )

    ui = commands.add_parser(
        "ui", parents=[common], help="browse, search and read the store's traces in a browser (127.0.0.1:8318)"
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ui.add_argument("--port", type=_port, default=8318, help="port (default 8318; 0 picks a free one)")
    ui.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on an address other than loopback: anyone who reaches it can read every stored trace",
    )
    ui.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE", help="see analyze")

    logs = commands.add_parser("logs", parents=[common], help="a trace's log records in time order, with span paths")
    logs.add_argument("trace_id", nargs="?", help="a trace id, or a unique prefix of one (default: the latest trace)")
    logs.add_argument("--json", action="store_true", help="print the records as JSON")

    analyze = commands.add_parser(
        "analyze", parents=[common], help="find N+1 calls, sequential calls, plateaus, lost context ..."
    )
    target = analyze.add_mutually_exclusive_group(required=True)
    target.add_argument("trace_id", nargs="?", help="a trace id, or a unique prefix of one")
    target.add_argument("--since", type=_duration, metavar="DURATION", help="rank problems across recent traces")
    analyze.add_argument("--limit", type=_positive, default=20, help="how many problems with --since (default 20)")
    analyze.add_argument(
        "--max-traces",
        type=_positive,
        default=1000,
        help="with --since, analyze at most this many traces, the newest (default 1000; how many were skipped is said)",
    )
    analyze.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a threshold, e.g. n_plus_one_min_calls=4 (names and defaults: README, mcp_tracing.store.patterns)",
    )
    analyze.add_argument("--json", action="store_true", help="print JSON")

    wrap = commands.add_parser(
        "wrap",
        parents=[common],
        help="run a stdio MCP server behind a tracing proxy: mcp-tracing wrap -- COMMAND ...",
        description="Starts COMMAND (a stdio MCP server, any language) and traces what passes through.",
    )
    wrap.add_argument(
        "--server-name",
        help="mcp_tracing.server.name (default: the name the server gives in initialize or server/discover, else "
        "one from the command)",
    )
    wrap.add_argument(
        "--service-name", help="service.name of the proxy (default: $OTEL_SERVICE_NAME, else a name from the command)"
    )
    wrap.add_argument("server_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    return parser


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _columns(text: str) -> int:
    if not text.isdigit() or not 20 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"not a width from 20 to 10000 columns: {text!r}")
    return int(text)


def _width(text: str) -> int:
    if not text.isdigit() or int(text) > 400:
        raise argparse.ArgumentTypeError(f"not a width from 0 to 400: {text!r}")
    return int(text)


class _UsageError(Exception):
    """Bad usage found after parsing (a threshold's name or value): exit status 2, as argparse's own."""


def _thresholds(assignments: Sequence[str]) -> Thresholds:
    try:
        return Thresholds().replace(assignments)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _findings(store: TraceStore, spans: Sequence[SpanRecord], thresholds: Thresholds | None) -> list[Finding]:
    return analyze(spans, thresholds, neighbours=store.roots_between)


def _analyze(store: TraceStore, args: argparse.Namespace) -> None:
    thresholds = _thresholds(args.threshold)
    if args.trace_id is not None:
        trace_id = store.resolve(args.trace_id)
        findings = _findings(store, store.spans(trace_id), thresholds)
        if args.json:
            print(json.dumps([f.as_dict() for f in findings], indent=2))
            return
        screen = Screen(args.width)
        screen.line(f"trace {trace_id}: {counted(len(findings), 'finding')}")
        for finding in findings:
            screen.line(
                Line("- ")
                .append(LABELS[finding.kind], FINDING)
                .append(f": {terminal_safe(finding.summary)} [{finding.time_ms:.1f} ms]")
            )
            screen.line(f"  spans: {' '.join(finding.span_ids)}")
            screen.line(f"  suggestion: {terminal_safe(finding.suggestion)}")
        return
    ids = store.trace_ids(since_s=args.since, limit=args.max_traces)
    in_window = store.count_traces(since_s=args.since)
    if len(ids) < in_window:  # said on stderr, so --json stays one document
        print(
            f"mcp-tracing: analyzed the newest {len(ids):,} of the {in_window:,} traces in the last"
            f" {_human(args.since)} ({in_window - len(ids):,} skipped: --max-traces N to change)",
            file=sys.stderr,
        )
    analyzed = progress(ids, f"analyzing {len(ids):,} traces")
    ranked = rank(f for trace_id in analyzed for f in _findings(store, store.spans(trace_id), thresholds))[: args.limit]
    if args.json:
        print(json.dumps(ranked, indent=2))
        return
    screen = Screen(args.width)
    screen.line(
        f"{counted(len(ids), 'trace')} in the last {_human(args.since)}: {counted(len(ranked), 'problem')},"
        " costliest first"
    )
    for row in ranked:
        screen.line(
            Line(
                f"- {row['total_ms']:.1f} ms in {counted(row['traces'], 'trace')}"
                f" ({counted(row['findings'], 'finding')}): "
            )
            .append(LABELS[row["kind"]], FINDING)
            .append(f": {terminal_safe(str(row['summary']))}")
        )
        screen.line(f"  e.g. trace {row['example_trace']}; suggestion: {terminal_safe(str(row['suggestion']))}")


class _MigrationProgress:
    """Progress of an older store's migration on stderr: its start, then each tenth of the way."""

    def __init__(self) -> None:
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != self._shown:
            self._shown = tenth
            print(f"mcp-tracing: indexing the trace store (older format): {done:,}/{total:,} traces", file=sys.stderr)


def _print_traces(
    store: TraceStore,
    rows: Sequence[TraceSummary],
    as_json: bool,
    width: int | None = None,
    thresholds: Thresholds | None = None,
) -> None:
    # Traces missing a server's half are marked: they look like broken propagation otherwise. Findings are
    # counted here, for the rows shown: they need the whole trace and the thresholds, so no summary holds them.
    lost: dict[str, list[str]] = {}
    findings: dict[str, int] = {}
    for row in rows:
        spans = store.spans(row.trace_id)
        lost[row.trace_id] = [half.server for half in lost_halves(spans)]
        findings[row.trace_id] = len(_findings(store, spans, thresholds))
    if as_json:
        print(
            json.dumps(
                [
                    {**row.__dict__, "findings": findings[row.trace_id], "lost_servers": lost[row.trace_id]}
                    for row in rows
                ],
                indent=2,
            )
        )
        return
    screen = Screen(width)
    layout = _TraceColumns.fitting(screen.width)
    screen.line(layout.header())
    for row in rows:
        note = f"  ⚠ no spans from {', '.join(json.dumps(s) for s in lost[row.trace_id])}" if lost[row.trace_id] else ""
        line = layout.row(row, findings[row.trace_id])
        if screen.width is None or line.cells + cell_len(note) <= screen.width:
            screen.line(line.append(note, FINDING))
        else:  # the note on a line of its own rather than cutting the row's numbers
            screen.line(line)
            screen.line(Line(note, FINDING))


class _TraceColumns:
    """The ``traces`` table's column widths for a screen width: as wide as the values need at 150 columns or
    more; narrower, the services and the root shrink first (cut with ``…``), then the trace id shows its first
    12 digits (a unique prefix, as ``show`` takes it), then the start shows the time only."""

    def __init__(self, trace: int = 32, root: int = 24, services: int = 32, start: int = 19) -> None:
        self.trace, self.root, self.services, self.start = trace, root, services, start

    _FIXED: Final = 10 + 5 + 6 + 8 + 2 * 7  # duration, spans, errors, findings, the gaps

    @classmethod
    def fitting(cls, width: int | None) -> _TraceColumns:
        layout = cls()
        if width is None:
            return layout
        for field, smallest in (("services", 12), ("root", 12), ("trace", 12), ("start", 8)):
            excess = layout.total() - width
            if excess <= 0:
                break
            current = getattr(layout, field)
            setattr(layout, field, max(smallest, current - excess))
        excess = layout.total() - width
        if excess > 0:  # share what is left between the two names, at least 4 cells each
            room = max(layout.root + layout.services - excess, 8)
            layout.root = max(room // 2, 4)
            layout.services = max(room - layout.root, 4)
        return layout

    def total(self) -> int:
        return self.trace + self.root + self.services + self.start + self._FIXED

    def header(self) -> Line:
        return Line(
            f"{'TRACE':{self.trace}}  {'ROOT':{self.root}}  {'SERVICES':{self.services}}  {'START':{self.start}}"
            f"  {'DURATION':>10}  {'SPANS':>5}  ERRORS  FINDINGS",
            SLOW,
        )

    def row(self, row: TraceSummary, findings: int) -> Line:
        started = datetime.fromtimestamp(row.start_ns / 1e9)
        start = started.strftime("%Y-%m-%d %H:%M:%S" if self.start >= 19 else "%H:%M:%S")
        line = Line(f"{row.trace_id[: self.trace]:{self.trace}}  {_cell(terminal_safe(row.root), self.root)}  ")
        services = Line(_cell(",".join(terminal_safe(service) for service in row.services), self.services))
        services.style_words((terminal_safe(service), service_style(service)) for service in row.services)
        line.pieces.extend(services.pieces)
        line.append(f"  {start:{self.start}}  {row.duration_ms:>7.0f} ms  {row.spans:>5}  ")
        line.append(f"{row.errors:>6}", ERROR if row.errors else "")
        line.append("  ")
        line.append(f"{findings:>8}", FINDING if findings else "")
        return line


def _cell(text: str, cells: int) -> str:
    shown = fit(text, cells)
    return shown + " " * (cells - cell_len(shown))


def _show(
    store: TraceStore,
    trace_id: str,
    as_json: bool,
    *,
    width: int | None = None,
    bars: int | None = None,
    html_file: str | None = None,
    thresholds: Thresholds | None = None,
    logs: bool = True,
) -> None:
    spans = store.spans(trace_id)
    if as_json:
        print(json.dumps([span.__dict__ for span in spans], indent=2, default=str))
        return
    findings = _findings(store, spans, thresholds)
    if html_file is not None:
        from mcp_tracing.ui import trace_page, trace_view

        page = trace_page(trace_view(spans, findings, store.logs(trace_id) if logs else ()))
        try:
            Path(html_file).write_text(page.html, encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"cannot write {html_file}: {exc.strerror or exc}") from None
        Screen(width).line(
            f"trace {trace_id}: {counted(len(spans), 'span')}, {counted(len(findings), 'finding')} -> {html_file}"
        )
        return
    screen = Screen(width)
    processes = len({(s.service, s.pid) for s in spans})
    screen.line(f"trace {trace_id}: {counted(len(spans), 'span')} from {counted(processes, 'process')}")
    if bars is None:  # a quarter of the screen, 10 to 60; none on a screen too narrow for them
        bars = 40 if screen.width is None else (min(max(screen.width // 4, 10), 60) if screen.width >= 60 else 0)
    marks = flagged(findings)
    # Room for the findings' marks after the bars (``  ⚑ N+1``): the labels give way, not the marks.
    marked = max((cell_len(f"  ⚑ {', '.join(labels)}") for labels in marks.values()), default=0)
    label_width = MAX_LABEL if screen.width is None else max(screen.width - bars - 4 - marked, 10)
    total = max(max(s.end_ns for s in spans) - min(s.start_ns for s in spans), 1) if spans else 1
    written = by_span(store.logs(trace_id)) if logs else {}
    for line, span in tree_lines(spans, bars=bars, marks=marks, label_width=label_width):
        screen.line(_styled(line, span, total) if screen.colour else line)
        for record in written.pop(span.span_id, ()):
            screen.line(log_line(nested_prefix(line), record, screen.colour))
    for record in (r for records in written.values() for r in records):  # their spans are not in the store
        screen.line(log_line("", record, screen.colour))
    for half in lost_halves(spans):
        screen.line(Line(f"⚠ {terminal_safe(half.describe())}", FINDING))


def _styled(line: str, span: SpanRecord, total_ns: int) -> Line:
    """A tree line in colour: the service's colour, errors red, a span that takes a quarter of the trace or more
    in bold, the findings' marks highlighted."""
    mark = line.find("  ⚑ ")
    text = Line(line[:mark], "").append(line[mark:], FINDING) if mark >= 0 else Line(line)
    words: list[tuple[str, str]] = []
    if span.service:
        words.append((f"({terminal_safe(span.service)})", service_style(span.service)))
    if span.status == "ERROR":
        words.append((" ERROR", ERROR))
    if span.parent_id is not None and span.end_ns - span.start_ns >= total_ns / 4:
        words.append((f"[{span.duration_ms:.0f} ms]", SLOW))
    return text.style_words(words)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 1 error, 2 bad usage).

    Output cut short by its reader (``mcp-tracing analyze --json | head -1``) ends the command quietly, with
    status 0: the reader had what it wanted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"mcp-tracing: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Python would print a traceback flushing stdout at exit: point stdout at nothing first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _run(args: argparse.Namespace) -> int:
    try:
        if args.store:
            os.environ["MCP_TRACING_STORE"] = args.store  # the demo's spawned servers write there too
        if args.command == "demo":
            return _demo(args.json, args.width)
        if args.command == "collect":
            return _collect(args)
        if args.command == "ui":
            return _ui(args)
        if args.command == "wrap":
            from mcp_tracing.proxy import main as wrap

            command = args.server_command[1:] if args.server_command[:1] == ["--"] else args.server_command
            return wrap(command, server_name=args.server_name, service_name=args.service_name)
        store = TraceStore(progress=_MigrationProgress())
        try:
            if args.command == "traces":
                if store.is_empty():
                    raise StoreError(f"the store at {store.path} holds no traces yet")
                for condition in store.unindexed(args.where):
                    print(
                        f"mcp-tracing: note: --where {condition.key}: not in the attribute index"
                        " (a payload key, or a value longer than it holds); reading every span",
                        file=sys.stderr,
                    )
                rows = store.traces(
                    since_s=args.since,
                    errors_only=args.errors,
                    slower_than_s=args.slower_than,
                    where=args.where,
                    search=args.search,
                    limit=args.limit,
                )
                _print_traces(store, rows, args.json, args.width)
            elif args.command == "analyze":
                if store.is_empty():
                    raise StoreError(f"the store at {store.path} holds no traces yet")
                _analyze(store, args)
            elif args.command == "logs":
                trace_id = store.resolve(args.trace_id) if args.trace_id is not None else _latest(store)
                print_logs(trace_id, store.spans(trace_id), store.logs(trace_id), args.json, args.width)
            else:
                _show(
                    store,
                    store.resolve(args.trace_id) if args.trace_id is not None else _latest(store),
                    args.json,
                    width=args.width,
                    bars=args.bars,
                    html_file=args.html,
                    thresholds=_thresholds(args.threshold),
                    logs=args.logs,
                )
        finally:
            store.close()
    except StoreError as exc:
        print(f"mcp-tracing: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port from 0 to 65535: {text!r}")
    return int(text)


def _loopback_or_allowed(args: argparse.Namespace, danger: str) -> None:
    """A non-loopback ``--host`` is bad usage without ``--allow-remote``, and warned about with it."""
    from mcp_tracing._serve import is_loopback

    if is_loopback(args.host):
        return
    if not args.allow_remote:
        raise _UsageError(f"--host {args.host} is not loopback; add --allow-remote to listen there")
    print(f"mcp-tracing {args.command}: warning: listening on {args.host}: {danger}", file=sys.stderr)


def _collect(args: argparse.Namespace) -> int:
    from mcp_tracing.collect import serve
    from mcp_tracing.store import SqliteSpanExporter

    _loopback_or_allowed(args, "anyone who reaches it can write into the store")
    return serve(SqliteSpanExporter(args.store), host=args.host, port=args.port, max_body=args.max_body)


def _ui(args: argparse.Namespace) -> int:
    from mcp_tracing.ui import serve

    thresholds = _thresholds(args.threshold)
    _loopback_or_allowed(args, "anyone who reaches it can read every stored trace")
    return serve(args.store, host=args.host, port=args.port, allow_remote=args.allow_remote, thresholds=thresholds)


def _latest(store: TraceStore) -> str:
    latest = store.traces(limit=1)
    if not latest:
        raise StoreError(f"the store at {store.path} holds no traces yet")
    return latest[0].trace_id


def _demo(as_json: bool, width: int | None) -> int:
    from mcp_tracing._core.exporters import STORE, traces_destination
    from mcp_tracing.cli.demo import run_demo
    from mcp_tracing.config import configure

    configure("demo-agent")
    with status("running the demo: an agent, a stdio server and an HTTP server (a few seconds)"):
        trace_id = run_demo()
    destinations = traces_destination()
    if STORE not in destinations:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        where = f"over OTLP ({endpoint})" if endpoint else f"to {', '.join(destinations) or 'nowhere (none)'}"
        print(f"trace {trace_id}: exported {where}")
        return 0
    store = TraceStore()
    try:
        _show(store, trace_id, as_json, width=width)
    finally:
        store.close()
    return 0


def console() -> Any:  # pragma: no cover - the console-script shim
    raise SystemExit(main())
