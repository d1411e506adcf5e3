"""The `chatline` command: argument parsing, dispatch, and turning every failure into one error line."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import traceback
from pathlib import Path

from chatline.console import ChatlineError, say, terminate_as_interrupt
from chatline.local import DEFAULT_API_PORT, DEFAULT_GATEWAY_PORT, PLACEHOLDER_ACCOUNT_SID, PLACEHOLDER_AUTH_TOKEN

DESCRIPTION = """\
Chatline gives a text chatbot a phone number: Twilio calls the gateway, the gateway hears the caller,
asks the chatbot and speaks its answers back. This command runs it all on your machine."""

EXAMPLES = {
    "serve": """\
examples:
  chatline serve                     # gateway on :8000, sample chatbot, local mode without a Twilio account
  CHATBOT_URL=https://my-bot.example.com/message chatline serve --port 8080
  ngrok http 8000                    # then, with the https URL ngrok prints and your Twilio account:
  PUBLIC_URL=https://<id>.ngrok.app TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... chatline serve""",
    "call": """\
examples:
  chatline call +15551234567 --from +15557654321 --url https://my-chatline.herokuapp.com
  TWILIO_FROM_NUMBER=+15557654321 PUBLIC_URL=https://<id>.ngrok.app chatline call +15551234567

Needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN; TWILIO_API_URL (optional) points at another REST API.""",
    "simulate": """\
examples:
  chatline simulate                                   # the classic dialogue against http://127.0.0.1:8000
  chatline simulate --say "hello" --say "book a table" --say "for four people" --say "goodbye"
  chatline simulate --wav question.wav --wav bye.wav --record call.wav
  chatline simulate --url http://127.0.0.1:8000 --public-url https://chatline.example.com --speed 2

The gateway must send its call updates to this simulator: TWILIO_API_URL=http://127.0.0.1:<--api-port>
(`chatline serve` does that by itself in local mode), and use the same auth token and account SID.""",
    "demo": """\
examples:
  chatline demo
  chatline demo --speed 3 --record demo.wav
  chatline demo --keep-monitor               # then open the monitor URL it prints; Ctrl-C stops it""",
    "calls": """\
examples:
  chatline calls                             # the 20 most recent calls
  chatline calls --search 5551230001 --limit 100
  chatline calls --csv > calls.csv
  chatline calls show CA0123456789abcdef0123456789abcdef
  chatline calls show CA0123456789abcdef0123456789abcdef --json

Reads the database at DATABASE_URL (default: chatline-history.db in the working directory), as the gateway does.""",
}


def wrap(text: str) -> str:
    """A description paragraph wrapped for the terminal (the raw formatter keeps the examples as written)."""
    return textwrap.fill(" ".join(text.split()), 79)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one `chatline: error: …` line, like every other error."""

    def error(self, message: str) -> None:
        raise ChatlineError(f"{message} (see `{self.prog} --help`)", 2)


def positive(text: str) -> float:
    """An argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above zero: {text!r}")
    return value


class AppendTurn(argparse.Action):
    """Collect --wav and --say into one list, in the order given on the command line."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        turns = list(getattr(namespace, self.dest) or [])
        turns.append((option_string.lstrip("-"), values))
        setattr(namespace, self.dest, turns)


def build_parser() -> Parser:
    """The whole command line, with a --help for every subcommand."""
    parser = Parser(prog="chatline", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="chatline 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    common = {"formatter_class": argparse.RawDescriptionHelpFormatter}

    serve = commands.add_parser("serve", help="run the gateway and the sample chatbot for local development",
                                description=wrap("Run the gateway and the sample chatbot (each as its Procfile line) "
                                "until Ctrl-C, print the webhook URLs for Twilio and stream both logs. Without "
                                "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN it runs in local mode: placeholder "
                                f"credentials and TWILIO_API_URL=http://127.0.0.1:{DEFAULT_API_PORT}, where "
                                "`chatline simulate` listens."), epilog=EXAMPLES["serve"], **common)
    serve.add_argument("--port", type=int, default=DEFAULT_GATEWAY_PORT,
                       help=f"the gateway's port (default {DEFAULT_GATEWAY_PORT})")
    serve.add_argument("--chatbot-port", type=int, help="the sample chatbot's port (default: a free one); "
                       "the sample chatbot is not started when CHATBOT_URL is set")
    serve.add_argument("--log-dir", help="where to write gateway.log and chatbot.log (default: a new temp dir)")
    serve.add_argument("--quiet", action="store_true", help="do not stream the logs, only say where they are")

    call = commands.add_parser("call", help="place an outbound call that runs the usual dialogue",
                               description=wrap("Place an outbound call through Twilio's REST API; when the callee "
                               "picks up, Twilio fetches <public URL>/voice, so the call runs the same dialogue "
                               "as an inbound one. Prints the new call's SID."), epilog=EXAMPLES["call"], **common)
    call.add_argument("to", metavar="NUMBER", help="the number to call, in E.164 form (+15551234567)")
    call.add_argument("--from", dest="from_", metavar="NUMBER",
                      help="your Twilio number to call from (default: $TWILIO_FROM_NUMBER)")
    call.add_argument("--url", metavar="PUBLIC_URL", help="the gateway's public base URL (default: $PUBLIC_URL)")

    sim = commands.add_parser("simulate", help="play Twilio's part against a running gateway",
                              description=wrap("Call a running gateway the way Twilio does: signed webhooks, the TwiML "
                              "it answers, a Media Stream of the caller's audio, and the REST API it updates the "
                              "call through. Prints the conversation as it happens; exits 0 when the call ended."),
                              epilog=EXAMPLES["simulate"], **common)
    sim.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_GATEWAY_PORT}",
                     help=f"the gateway's local base URL (default http://127.0.0.1:{DEFAULT_GATEWAY_PORT})")
    sim.add_argument("--public-url", help="the URL the gateway checks signatures against, its PUBLIC_URL; "
                     "requests to it are tunnelled to --url (default: same as --url)")
    sim.add_argument("--wav", dest="turns", action=AppendTurn, metavar="FILE",
                     help="a caller turn from a WAV file (repeatable; sox converts any WAV, without it 8/16 kHz "
                     "16-bit mono)")
    sim.add_argument("--say", dest="turns", action=AppendTurn, metavar="TEXT",
                     help="a caller turn spoken by espeak-ng (repeatable, mixes with --wav in order); with "
                     "neither: the bundled recordings of hello, good, goodbye")
    sim.add_argument("--api-port", type=int, default=DEFAULT_API_PORT,
                     help=f"port of the simulated REST API, the gateway's TWILIO_API_URL (default {DEFAULT_API_PORT})")
    sim.add_argument("--auth-token", help="the token webhooks are signed with (default: $TWILIO_AUTH_TOKEN, else "
                     "the placeholder `chatline serve` uses in local mode)")
    sim.add_argument("--account-sid", help="the account the REST API accepts (default: $TWILIO_ACCOUNT_SID, else "
                     "the local-mode placeholder)")
    add_run_options(sim, timeout=60.0)
    sim.add_argument("--hangup-after", type=positive, default=15.0, metavar="SECONDS",
                     help="the caller hangs up this long after their last turn if the bot has not (default 15)")

    demo = commands.add_parser("demo", help="run everything locally and hold the classic dialogue",
                               description=wrap("Start the sample chatbot, the gateway (offline recognizer, "
                               "STT_PROVIDER=sphinx) and the Twilio simulator on free local ports, hold the "
                               "classic dialogue from bundled recordings (hello, good, goodbye), print it, and "
                               "exit 0 when the bot answered as its script says and hung up. Needs no account "
                               "and no environment; stops everything it started."), epilog=EXAMPLES["demo"], **common)
    add_run_options(demo, timeout=90.0)
    demo.add_argument("--keep-monitor", action="store_true",
                      help="after the call, leave the gateway running with its operator page (/monitor) to look at, "
                      "until Ctrl-C")

    calls = commands.add_parser("calls", help="list recent calls from the call history, or show one",
                                description=wrap("List the most recent calls from the call history (the database at "
                                "DATABASE_URL the gateway writes), newest first, with how each ended; `chatline "
                                "calls show CALLSID` prints one conversation."), epilog=EXAMPLES["calls"], **common)
    add_export_options(calls)
    calls.add_argument("--limit", type=int, default=20, help="how many calls (default 20)")
    calls.add_argument("--search", default="", metavar="TEXT", help="only calls whose number or CallSid contains TEXT")
    shown = calls.add_subparsers(dest="calls_command", metavar="show", parser_class=Parser)
    show = shown.add_parser("show", help="print one call's conversation", **common)
    show.add_argument("call_sid", metavar="CALLSID")
    add_export_options(show, inner=True)
    return parser


def add_export_options(parser: argparse.ArgumentParser, inner: bool = False) -> None:
    """--json / --csv and the database, for `chatline calls` and (`inner`) `chatline calls show`, where they are
    left unset unless given, so `chatline calls --json show CALLSID` keeps the --json given before `show`."""
    unset = {"default": argparse.SUPPRESS} if inner else {}
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", dest="form", action="store_const", const="json", help="print JSON", **unset)
    form.add_argument("--csv", dest="form", action="store_const", const="csv", help="print CSV", **unset)
    parser.add_argument("--database", metavar="URL", help="the history's database URL (default: $DATABASE_URL, "
                        "else sqlite:///chatline-history.db)", **unset)


def add_run_options(parser: argparse.ArgumentParser, timeout: float) -> None:
    """Options shared by the commands that hold a simulated call."""
    parser.add_argument("--speed", type=positive, default=1.0,
                        help="play the call this many times faster than real time (default 1)")
    parser.add_argument("--timeout", type=positive, default=timeout, metavar="SECONDS",
                        help=f"give up when the call has not ended after this long (default {timeout:g})")
    parser.add_argument("--record", metavar="FILE.wav",
                        help="write the whole call to a WAV file: the caller's audio and the bot's replies "
                        "spoken by espeak-ng")
    parser.add_argument("--verbose", "-v", action="store_true", help="also print webhooks, streams and updates")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the subcommand; heavy imports happen here, so --help stays fast."""
    # Library warnings (the stand-in's, werkzeug's) would repeat what the printed conversation already says.
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.CRITICAL,
                        format="  (%(name)s: %(message)s)")
    if args.command in ("serve", "call", "simulate", "calls") and Path(".env").is_file():
        from dotenv import load_dotenv

        load_dotenv(Path(".env"))  # like the gateway in development; real environment variables win
    if args.command == "serve":
        from chatline.serve import serve

        return serve(args.port, args.chatbot_port, args.log_dir, args.quiet)
    if args.command == "call":
        from chatline.outbound import place_call

        say(place_call(args.to, args.from_, args.url))
        return 0
    if args.command == "simulate":
        from chatline.simulate import build_turns, run_call

        # Same defaults as `chatline serve` in local mode, so the two agree without any setting.
        account_sid = args.account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or PLACEHOLDER_ACCOUNT_SID
        auth_token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or PLACEHOLDER_AUTH_TOKEN
        outcome = run_call(args.url, public_url=args.public_url, turns=build_turns(args.turns or []),
                           api_port=args.api_port, speed=args.speed, timeout=args.timeout, account_sid=account_sid,
                           auth_token=auth_token, hangup_after=args.hangup_after, record=args.record,
                           verbose=args.verbose)
        if outcome.problem:
            raise ChatlineError(outcome.problem)
        return 0
    if args.command == "demo":
        from chatline.demo import run_demo

        return run_demo(args.speed, args.timeout, args.record, args.verbose, keep_monitor=args.keep_monitor)
    if args.command == "calls":
        from chatline.calls import list_calls, show_call

        if args.calls_command == "show":
            show_call(args.database, args.call_sid, args.form or "text")
        else:
            list_calls(args.database, args.limit, args.search, args.form or "text")
        return 0
    build_parser().print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: every failure ends as one line and an exit code, never a traceback."""
    sys.stdout.reconfigure(errors="replace")  # a reply with any character must not crash a non-UTF-8 terminal
    # Started with an empty environment (env -i, some service managers): the Procfile's `bash` must still be found.
    os.environ.setdefault("PATH", os.defpath)
    try:
        with terminate_as_interrupt():  # SIGTERM/SIGHUP get the same cleanup as Ctrl-C
            return run(build_parser().parse_args(argv))
    except ChatlineError as exc:
        say(f"chatline: error: {exc}", err=True)
        return exc.code
    except KeyboardInterrupt:
        say("chatline: interrupted", err=True)
        return 130
    except BrokenPipeError:  # `chatline demo | head`: the reader left; nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 1
    except Exception as exc:  # the top of the program: one line, the traceback only on request
        if os.environ.get("CHATLINE_DEBUG"):
            traceback.print_exc()
        say(f"chatline: error: unexpected {type(exc).__name__}: {exc} (CHATLINE_DEBUG=1 shows the traceback)",
            err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
