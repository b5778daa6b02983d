"""The command line: ``run``, ``scan``, ``decode``, ``check-config``. Exit 0 ok, 1, 2 usage.

No traceback reaches a user: every known failure is a WatcherError with a message, and an
unexpected one is reported in one line with exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn

from watcher import __version__
from watcher.errors import ConfigError, StateDirectoryError, StateError, UsageError, WatcherError
from watcher.events import utc_now
from watcher.extract import find_denials
from watcher.log import configure_logging, forward_library_logs
from watcher.model import DEFAULT_CLOUDTRAIL_ERROR_CODES, Event, Origin
from watcher.pipeline import DenialBuilder, OrderedDecodingEmitter
from watcher.report import summary, terminal_safe, use_colour
from watcher.scan import Outbox, Scanner
from watcher.sinks.stdout import StdoutSink, render
from watcher.sources.lines import DEFAULT_MAX_LINE_BYTES

if TYPE_CHECKING:
    from watcher.alerts import AlertEngine
    from watcher.config import Config, DecodeSettings
    from watcher.log import Logger

_BARE_BLOB_RE = re.compile(r"[A-Za-z0-9_-]{16,10240}")
_BARE_TRUNCATED_BLOB_RE = re.compile(r"[A-Za-z0-9_-]{16,10240}(?:\.\.\.|\u2026)")  # cut short
_DECODE_OK = frozenset({"decoded", "cached", "not_needed"})
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_CONFIG_PATH = "/etc/authz-watcher/authz-watcher.yaml"
CONFIG_ENV = "AUTHZ_WATCHER_CONFIG"
DEFAULT_DRAIN_TIMEOUT_SECONDS = 30.0


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number greater than zero: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="authz-watcher",
        description="Find AWS authorization failures in logs and explain them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = commands.add_parser(
        "scan",
        help="one pass over files, directories, .gz files or - (stdin); events to stdout",
    )
    scan.add_argument("-c", "--config", help="configuration file (decode settings, cache)")
    scan.add_argument("--no-decode", action="store_true", help="never call STS")
    scan.add_argument(
        "--summary",
        action="store_true",
        help="print a table of denials per principal and action instead of JSON",
    )
    scan.add_argument(
        "--max-line-bytes",
        type=_positive_int,
        default=None,
        help="lines longer than this are searched in windows (default 1048576)",
    )
    scan.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=DEFAULT_DRAIN_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for webhook/SNS sinks of the config to deliver before exiting "
        f"(default {DEFAULT_DRAIN_TIMEOUT_SECONDS:g}); what is left stays in the outbox, exit 1",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH")

    decode = commands.add_parser(
        "decode",
        help="decode and explain one encoded message, or a whole pasted error",
        description="Decode an 'Encoded authorization failure message' with STS and explain "
        "it. INPUT is the blob, a whole pasted error (quote it), or - to read standard input.",
    )
    decode.add_argument("input", nargs="?", default="-", metavar="BLOB|LINE|-")
    decode.add_argument("--json", action="store_true", help="print the event JSON")
    decode.add_argument("--profile", help="AWS profile for the STS call")
    decode.add_argument("--region", help="AWS region for the STS call")
    decode.add_argument("-c", "--config", help="configuration file (accounts, cache)")

    for name, summary_text in (
        ("run", "the daemon: follow the configured sources"),
        ("check-config", "validate a configuration file"),
    ):
        command = commands.add_parser(name, help=summary_text)
        command.add_argument(
            "-c",
            "--config",
            default=None,
            help=f"configuration file (default ${CONFIG_ENV} or {DEFAULT_CONFIG_PATH})",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "decode":
            return _decode(args)
        if args.command == "run":
            return _run(args)
    except ConfigError as exc:
        _print_error(str(exc))
        return EXIT_USAGE
    except (UsageError, StateDirectoryError) as exc:
        _print_error(str(exc))
        return EXIT_USAGE
    except WatcherError as exc:
        _print_error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`scan ... | head`): stop quietly, as other filters do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the promise: one line, never a traceback
        _print_error(f"internal error: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE
    raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover - argparse stops it


def _print_error(message: str) -> None:
    """One line on stderr; a path or name in it may carry control characters: escaped."""
    print(f"authz-watcher: {terminal_safe(message)}", file=sys.stderr)


def _config_path(explicit: str | None) -> str:
    return explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def _load_config(path: str) -> Config:
    from watcher.config import load_config  # noqa: PLC0415 - yaml only when a config is named

    return load_config(path)


def _scan(args: argparse.Namespace) -> int:
    config = _load_config(args.config) if args.config else None
    log = configure_logging()
    with _outbox(config, log) as remote:
        complete = _scan_inputs(args, config, log, remote)
        undelivered = remote.drain(args.drain_timeout)
    for name, count in sorted(undelivered.items()):
        print(
            f"authz-watcher: {count} events not delivered to {name} within "
            f"{args.drain_timeout:g} s; they stay in the outbox in {remote.state_dir} and go "
            "out with the next run or scan",
            file=sys.stderr,
        )
    return EXIT_OK if complete and not undelivered else EXIT_FAILURE


@contextlib.contextmanager
def _outbox(config: Config | None, log: Logger) -> Iterator[Outbox]:
    """The config's webhook and SNS sinks for ``scan``, delivering from the outbox."""
    outbox = Outbox.open(config, log)
    try:
        yield outbox
    finally:
        outbox.close()


def _scan_inputs(
    args: argparse.Namespace, config: Config | None, log: Logger, remote: Outbox
) -> bool:
    """Every input to stdout (and to ``remote``); whether every input was read."""
    max_line_bytes = args.max_line_bytes or _first_max_line_bytes(config)
    settings = config.decode if config is not None else None
    counts: Counter[tuple[str, str]] = Counter()
    sink = StdoutSink()
    alerts = _alert_engine(config)
    raised: list[Event] = []

    def emit(event: Event) -> None:
        if args.summary:
            principal = terminal_safe(event["principal_arn"] or "(unknown)")
            counts[(principal, terminal_safe(event["action"] or "(unknown)"))] += 1
        else:
            sink.write(event)
        remote.write(event)
        if alerts is not None:  # replaying history: the windows run on the denials' own times
            from watcher.alerts import event_time  # noqa: PLC0415 - only with alert rules

            for alert in alerts.observe(event, event_time(event)):
                raised.append(alert)
                if not args.summary:
                    sink.write(alert)
                remote.write(alert)

    with _decoding(settings, config, log, off=args.no_decode) as (builder, concurrency):
        emitter = OrderedDecodingEmitter(builder, emit, max_concurrency=concurrency)
        try:
            scanner = Scanner(
                emitter,
                log,
                max_line_bytes=max_line_bytes,
                error_codes=_cloudtrail_error_codes(config),
                order_by_time=alerts is not None,
            )
            result = scanner.scan(args.paths)
        finally:
            emitter.close()
    for alert in alerts.flush_summaries() if alerts is not None else []:
        raised.append(alert)
        if not args.summary:
            sink.write(alert)
    if args.summary:
        _print_summary(counts)
        if raised:
            print(f"{len(raised):>7}  alerts ({', '.join(sorted({a['rule'] for a in raised}))})")
    sink.flush()
    return result.complete


def _alert_engine(config: Config | None) -> AlertEngine | None:
    if config is None or not config.alerts:
        return None
    from watcher.alerts import AlertEngine  # noqa: PLC0415 - only with alert rules

    return AlertEngine(config.alerts)


@contextlib.contextmanager
def _decoding(
    settings: DecodeSettings | None, config: Config | None, log: Logger, *, off: bool
) -> Iterator[tuple[DenialBuilder, int]]:
    """The builder for a command: with an STS decoder (and the state's cache) unless off.

    boto3 is imported here and only here, so ``--no-decode`` starts fast.
    """
    if off:
        yield DenialBuilder(disabled_reason="decoding disabled by --no-decode"), 1
        return
    if settings is not None and not settings.enabled:
        reason = "decoding disabled in the configuration (decode.enabled: false)"
        yield DenialBuilder(disabled_reason=reason), 1
        return
    from watcher.config import DecodeSettings  # noqa: PLC0415 - see the docstring
    from watcher.decode import DecodeCache, StsDecoder  # noqa: PLC0415
    from watcher.state import StateStore  # noqa: PLC0415

    settings = settings or DecodeSettings()
    store = None
    if config is not None:
        try:
            store = StateStore(config.state_dir, log)
        except StateError as exc:
            log.warning("state_unavailable", error=str(exc), detail="decode cache kept in memory")
    try:
        decoder = StsDecoder(settings, log, DecodeCache(settings.cache_ttl_seconds, store))
        yield DenialBuilder(decoder=decoder), settings.max_concurrency
    finally:
        if store is not None:
            store.close()


def _run(args: argparse.Namespace) -> int:
    from watcher.daemon import Daemon  # noqa: PLC0415 - boto3 and watchdog only for the daemon

    log = configure_logging()
    forward_library_logs(log)
    return Daemon(_config_path(args.config), log).run()


def _decode(args: argparse.Namespace) -> int:
    from watcher.config import DecodeSettings  # noqa: PLC0415 - keep start-up of scan fast

    if args.input == "-":
        if sys.stdin.isatty():
            raise UsageError("give a blob or a pasted error as an argument, or pipe it into -")
        # Bytes, not text: a blob in a binary dump or odd encoding is still a blob.
        text, source = sys.stdin.buffer.read().decode("utf-8", "replace"), "<stdin>"
    else:
        text, source = args.input, "<argument>"
    bare = text.strip()
    if _BARE_BLOB_RE.fullmatch(bare) or _BARE_TRUNCATED_BLOB_RE.fullmatch(bare):
        text = f"Encoded authorization failure message: {bare}"
    if not find_denials(text):
        raise UsageError("no encoded authorization message or denial found in the input")
    config = _load_config(args.config) if args.config else None
    settings = config.decode if config is not None else DecodeSettings()
    settings = dataclasses.replace(
        settings,
        enabled=True,
        profile=args.profile or settings.profile,
        region=args.region or settings.region,
    )
    log = configure_logging()
    with _decoding(settings, config, log, off=False) as (builder, _):
        events = builder.events(text, Origin("file", source), utc_now())
    if args.json or not sys.stdout.isatty():
        for event in events:
            print(render(event))
    else:
        colour = use_colour(sys.stdout)
        print("\n\n".join(summary(event, colour=colour) for event in events))
    failed = [e for e in events if e["decode_status"] not in _DECODE_OK]
    return EXIT_FAILURE if failed else EXIT_OK


def _cloudtrail_error_codes(config: Config | None) -> tuple[str, ...]:
    for source in config.sources if config is not None else ():
        if source.type == "cloudtrail":
            return source.error_codes
    return DEFAULT_CLOUDTRAIL_ERROR_CODES


def _first_max_line_bytes(config: Config | None) -> int:
    for source in config.sources if config is not None else ():
        if source.type == "file":
            return source.max_line_bytes
    return DEFAULT_MAX_LINE_BYTES


def _print_summary(counts: Counter[tuple[str, str]]) -> None:
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    principal_width = max([len("PRINCIPAL"), *(len(p) for (p, _), _ in rows)])
    print(f"{'COUNT':>7}  {'PRINCIPAL':<{principal_width}}  ACTION")
    for (principal, action), count in rows:
        print(f"{count:>7}  {principal:<{principal_width}}  {action}")
    print(f"{sum(counts.values()):>7}  denials in total")


def _check_config(args: argparse.Namespace) -> int:
    path = _config_path(args.config)
    config = _load_config(path)
    from watcher.sinks.remote import check_remote_sinks  # noqa: PLC0415 - only here

    check_remote_sinks(config)
    print(
        f"{path}: OK ({len(config.sources)} sources, {len(config.sinks)} sinks, "
        f"{len(config.alerts)} alert rules)"
    )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
