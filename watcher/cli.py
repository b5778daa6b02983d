"""The command line: ``scan`` and ``check-config``. Exit status 0 ok, 1 runtime failure, 2 usage.

No traceback reaches a user: every known failure is a WatcherError with a message, and an
unexpected one is reported in one line with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from watcher import __version__
from watcher.errors import ConfigError, UsageError, WatcherError
from watcher.log import configure_logging
from watcher.model import Event
from watcher.pipeline import DenialBuilder
from watcher.scan import Scanner
from watcher.sinks.stdout import StdoutSink
from watcher.sources.lines import DEFAULT_MAX_LINE_BYTES

if TYPE_CHECKING:
    from watcher.config import Config

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_CONFIG_PATH = "/etc/authz-watcher/authz-watcher.yaml"
CONFIG_ENV = "AUTHZ_WATCHER_CONFIG"
DECODE_UNAVAILABLE = "decoding through STS is not available in this version"


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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
    scan.add_argument("paths", nargs="+", metavar="PATH")

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument(
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
    except ConfigError as exc:
        print(f"authz-watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"authz-watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WatcherError as exc:
        print(f"authz-watcher: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`scan ... | head`): stop quietly, as other filters do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover - argparse stops it


def _config_path(explicit: str | None) -> str:
    return explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def _load_config(path: str) -> Config:
    from watcher.config import load_config  # noqa: PLC0415 - yaml only when a config is named

    return load_config(path)


def _scan(args: argparse.Namespace) -> int:
    config = _load_config(args.config) if args.config else None
    log = configure_logging()
    max_line_bytes = args.max_line_bytes or _first_max_line_bytes(config)
    disabled_reason = "decoding disabled by --no-decode" if args.no_decode else DECODE_UNAVAILABLE
    if not args.no_decode and config is not None and not config.decode.enabled:
        disabled_reason = "decoding disabled in the configuration (decode.enabled: false)"
    builder = DenialBuilder(disabled_reason=disabled_reason)

    counts: Counter[tuple[str, str]] = Counter()
    sink = StdoutSink()

    def emit(event: Event) -> None:
        if args.summary:
            counts[(event["principal_arn"] or "(unknown)", event["action"] or "(unknown)")] += 1
        else:
            sink.write(event)

    result = Scanner(builder, emit, log, max_line_bytes=max_line_bytes).scan(args.paths)
    if args.summary:
        _print_summary(counts)
    sink.flush()
    return EXIT_OK if result.complete else EXIT_FAILURE


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
    print(
        f"{path}: OK ({len(config.sources)} sources, {len(config.sinks)} sinks, "
        f"{len(config.alerts)} alert rules)"
    )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
