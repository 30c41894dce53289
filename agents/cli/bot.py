"""``regimedesk bot``: the Telegram bot (commands, approvals, alerts), locked to its owners."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from agents.cli.helptext import examples
from agents.cli.output import print_json

__all__ = ["register"]

#: Start-up checks of the Bot API (getMe): tries in all, and the first wait in seconds (doubling).
STARTUP_ATTEMPTS = 5
STARTUP_BACKOFF = 1.0
#: Does the waiting between start-up attempts (a module attribute so tests can record the waits).
_startup_sleep = time.sleep


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bot",
        help="run the Telegram bot (commands, approval buttons, alerts)",
        description=(
            "Run the Telegram bot with python-telegram-bot, polling the Bot API (telegram.base_url; "
            "a local Bot API server works too). The token comes from TELEGRAM_BOT_TOKEN only. "
            "It obeys a message only if the chat id is in telegram.chat_ids AND the sender's user id "
            "is in telegram.user_ids or telegram.admin_ids; empty lists obey nobody. Admin-only: "
            "/halt, /reduce, /resume, /run with --broker or --approve, and the Approve/Reject buttons. "
            "Anyone else gets a polite refusal (with their chat and user ids), which is logged. "
            "Commands: /start /help /status /regime /stats /signal /run /report /positions /orders "
            "/risk /halt /reduce /resume /schedule. Long commands run in worker threads. Runs that "
            "finish while the bot is up (from the bot, 'regimedesk run' or the scheduler) are alerted "
            "to telegram.chat_ids: regime changes, gate rejections, circuit breakers, orders and fills. "
            "SIGINT/SIGTERM stop it (a command already running finishes first). At start-up it checks the "
            "token with the Bot API, trying an unreachable or failing API up to 5 times over about 15 s; if none "
            "succeeds it exits with one line on stderr and code 1 (at once if the token is refused). See docs/telegram.md."
        ),
    )
    p.epilog = examples("regimedesk bot --check", "regimedesk bot", "regimedesk bot --no-alerts")
    p.add_argument("--check", action="store_true",
                   help="check the configuration and token, print the allow-lists, and exit without connecting")
    p.add_argument("--no-alerts", dest="no_alerts", action="store_true",
                   help="do not send alerts about finished runs")
    p.add_argument("--json", action="store_true", help="with --check: print JSON")
    p.set_defaults(handler=_bot)


def _bot(args: argparse.Namespace, ctx) -> int:
    from agents.bot import build_bot
    from integrations import MissingCredentialsError, TokenRedactingFilter

    settings, secrets = ctx.settings, ctx.secrets
    tg = settings.telegram
    token = secrets.get("telegram_bot_token")
    if not token:
        raise MissingCredentialsError(
            "the bot needs a token: set TELEGRAM_BOT_TOKEN (create a bot with @BotFather; see docs/telegram.md)")
    doc = {"token": "set", "base_url": tg.base_url, "chat_ids": tg.chat_ids, "user_ids": tg.user_ids,
           "admin_ids": tg.admin_ids, "rate_limit": f"{tg.rate_limit} per {tg.rate_window_seconds:g} s",
           "alerts": bool(tg.chat_ids) and tg.alert_poll_seconds > 0 and not args.no_alerts}
    empty = not tg.chat_ids or not (tg.user_ids or tg.admin_ids)
    if empty:
        sys.stderr.write(
            "warning: telegram.chat_ids and telegram.user_ids/admin_ids are not all set: the bot obeys NOBODY. "
            "It answers every message with the sender's chat and user ids; put them into regimedesk.toml "
            "(see docs/telegram.md).\n")
    if args.check:
        if args.json:
            print_json(doc)
        else:
            print(f"token set; Bot API {tg.base_url}")
            print(f"chats {tg.chat_ids or 'none'}; users {tg.user_ids or 'none'}; admins {tg.admin_ids or 'none'}")
            print(f"rate limit {doc['rate_limit']} per chat; alerts {'on' if doc['alerts'] else 'off'}")
        return 0
    # python-telegram-bot puts the token in request URLs: keep it out of every log line.
    redactor = TokenRedactingFilter(token)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    logging.getLogger("agents.bot").setLevel(logging.INFO)
    logging.getLogger("integrations._telegram_bot").setLevel(logging.INFO)
    desk = build_bot(settings, secrets, sender=None if args.no_alerts else "default")
    try:
        desk.bot.connect(attempts=STARTUP_ATTEMPTS, backoff=STARTUP_BACKOFF, sleep=_startup_sleep)
    except BaseException:
        desk.close()
        raise
    sys.stderr.write(
        f"RegimeDesk bot polling {tg.base_url.split('//', 1)[-1].split('/', 1)[0]}: "
        f"{len(tg.chat_ids)} chat(s), {len(tg.user_ids)} user(s), {len(tg.admin_ids)} admin(s); "
        f"alerts {'on' if desk.watcher is not None else 'off'}. Ctrl-C stops.\n")
    desk.run()
    sys.stderr.write("bot stopped\n")
    return 0
