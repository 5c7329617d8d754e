"""Command line: ``python -m client publish|watch ...``; exit statuses and one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Final

from client.exceptions import ClientError, Interrupted, UsageError
from client.publish import PublishOptions, publish
from client.sources import SourceSpec, VideoFormat
from client.watch import WatchOptions, watch

PROG: Final = "python -m client"
STOP_GRACE_S: Final = 2.0
TOKEN_ENV: Final = "TAKAN_TOKEN"  # noqa: S105 (a variable name, not a secret)

PUBLISH_HELP = """\
Join an inspection as the applicant and stream video and audio to it.

By running this command you accept the recording notice on the applicant's behalf: publish sends
`consent {accepted: true}` for you before it sends any media. Run it only for a site where the
person operating this command may agree to the inspection being recorded.

The inspector's audio is received and counted, not played.
Inspector camera controls are answered: torch and zoom are not supported; switch_camera is
supported only for a camera source (it moves to another /dev/video device).
"""

WATCH_HELP = """\
Join an inspection as an inspector, receive and decode the applicant's video and audio, and report
frames, frame rate, size and, for a testsrc publisher, glass-to-glass latency (receive wall clock
minus the capture time in the picture; meaningful only when both clocks agree).
The inspector sends a quiet 660 Hz tone so the applicant receives inspector audio.
"""

EXIT_STATUS_HELP = """\
exit status: 0 done, 1 failed, 2 usage or malformed URL, 3 server unreachable,
4 refused by the server (e.g. unauthorized), 5 protocol failure, 6 media source unusable,
130 interrupted before the session was established. A publisher whose connection drops after
joining (a server restart, the node running the inspection lost) joins again through the same
link for up to 60 s before it gives up.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the process exit status."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    _configure_logging(arguments.verbose)
    try:
        return asyncio.run(_run(arguments))
    except ClientError as error:
        print(f"{PROG} {arguments.command}: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug: one line unless asked for details
        if arguments.verbose:
            logging.getLogger(__name__).exception("unexpected failure")
        print(
            f"{PROG} {arguments.command}: error: unexpected {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1


async def _run(arguments: argparse.Namespace) -> int:
    """Run the command; the first Ctrl-C (or SIGTERM) asks it to stop and report, a second one,
    or a command that does not stop within the grace period, cancels it."""
    stop = asyncio.Event()
    command = asyncio.create_task(_command(arguments, stop))
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        if stop.is_set():
            command.cancel()
        else:
            stop.set()
            loop.call_later(STOP_GRACE_S, command.cancel)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, interrupt)
    try:
        return await command
    except asyncio.CancelledError:
        if not command.cancelled():
            raise
        raise Interrupted("interrupted before the session was established") from None


async def _command(arguments: argparse.Namespace, stop: asyncio.Event) -> int:
    if arguments.command == "publish":
        published = await publish(_publish_options(arguments), stop)
        _print(arguments.json, published.as_json(), published.summary())
    else:
        watched = await watch(_watch_options(arguments), stop)
        _print(arguments.json, watched.as_json(), watched.summary())
    return 0


def _publish_options(arguments: argparse.Namespace) -> PublishOptions:
    return PublishOptions(
        url=arguments.url,
        source=SourceSpec.parse(arguments.source),
        video_format=VideoFormat(arguments.width, arguments.height, arguments.fps),
        seconds=arguments.seconds,
        loop=arguments.loop,
        name=arguments.name,
        verify_tls=not arguments.insecure,
    )


def _watch_options(arguments: argparse.Namespace) -> WatchOptions:
    token = arguments.token or os.environ.get(TOKEN_ENV, "")
    if not token:
        raise UsageError(f"give --token (or set {TOKEN_ENV}): the bearer token from /api/login")
    return WatchOptions(
        url=arguments.url,
        token=token,
        seconds=arguments.seconds,
        name=arguments.name,
        verify_tls=not arguments.insecure,
        end_on_exit=arguments.end,
    )


def _print(as_json: bool, figures: dict[str, object], summary: str) -> None:
    print(json.dumps(figures, sort_keys=True) if as_json else summary, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Takan headless participant: publish a source as the applicant, or watch "
        "as an inspector.",
        epilog=EXIT_STATUS_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    publisher = commands.add_parser(
        "publish",
        help="join as the applicant and stream (accepts the recording notice for you)",
        description=PUBLISH_HELP,
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publisher.add_argument("url", metavar="APPLICANT_URL", help="http(s)://host:port/join/TOKEN")
    publisher.add_argument(
        "--source",
        default="testsrc",
        help="testsrc (time-coded test picture and tone, the default), a media FILE, "
        "or camera:N for /dev/videoN",
    )
    publisher.add_argument("--width", type=_positive_int, help="picture width (testsrc, camera)")
    publisher.add_argument("--height", type=_positive_int, help="picture height (testsrc, camera)")
    publisher.add_argument("--fps", type=_positive_float, help="frame rate (testsrc, camera)")
    publisher.add_argument("--loop", action="store_true", help="repeat a FILE source")
    _common(publisher)

    watcher = commands.add_parser(
        "watch",
        help="join as an inspector and measure what arrives",
        description=WATCH_HELP,
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watcher.add_argument(
        "url", metavar="INSPECTOR_URL", help="http(s)://host:port/inspect/INSPECTION_ID"
    )
    watcher.add_argument(
        "--token", help=f"bearer token from POST /api/login (default: ${TOKEN_ENV})"
    )
    watcher.add_argument(
        "--end", action="store_true", help="end the inspection for everybody on leaving"
    )
    _common(watcher)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds",
        type=_positive_float,
        help="stop after this long (default: until Ctrl-C or the inspection ends)",
    )
    parser.add_argument("--name", help="display name sent in hello")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log progress (-vv: debug)"
    )


def _configure_logging(verbosity: int) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbosity > 1 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("client").setLevel(
        logging.DEBUG if verbosity > 1 else logging.INFO if verbosity else logging.WARNING
    )
    if verbosity < 2:
        # aiortc and aioice log transient network trouble as warnings; the client reports outcomes.
        for noisy in ("aiortc", "aioice", "aiohttp"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value
