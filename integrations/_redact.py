"""One way to keep configured secrets out of every error, log line, journal row and output.

Servers echo credentials back: an OpenAI-compatible server may quote the key in its 401
body, Polygon the ``apiKey`` it was given, Alpaca the ``APCA-API-KEY-ID`` and secret headers,
the Telegram Bot API the token in an error description, and python-telegram-bot puts the
token into request URLs and some of its own messages. :func:`redact` replaces every
configured secret in a text with ``***``; it is applied where text leaves an adapter (the
errors raised by the LLM client, the Polygon and Alpaca sources, the Alpaca broker and the
Telegram sender and bot), where rows enter the journal, where the scheduler records job
runs and where the command line writes to stdout and stderr.

Which values are secret: the ones passed to :func:`redact` (an adapter passes its own
credentials) plus the ones registered for the whole process with :func:`register_secrets`
(the command line registers every secret variable it finds in the environment). What is
replaced, case-insensitively (python-telegram-bot rewrites the case of error texts):

- the value itself, also inside longer strings (``/bot123:SECRET/getMe``);
- its URL-encoded forms (``quote`` and ``quote_plus``) and its JSON-escaped form;
- for a value of the form ``ID:SECRET`` (a Telegram bot token), the part after the colon.

Values (and parts) shorter than :data:`MIN_SECRET_LENGTH` characters are ignored: replacing
them would mangle ordinary text, and no real key is that short.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "redact",
    "register_secrets",
    "RedactingFilter",
    "RedactingStream",
]

#: Secrets (and ``ID:SECRET`` parts) shorter than this are not redacted.
MIN_SECRET_LENGTH = 8
#: What a secret is replaced with.
REDACTED = "***"

_lock = threading.Lock()
_registered: frozenset[str] = frozenset()


def _clean(values: Iterable[str | None]) -> frozenset[str]:
    if isinstance(values, (str, bytes)):
        raise TypeError("secrets must be an iterable of strings, not a single string")
    out: set[str] = set()
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"secrets must contain strings or None, got {type(value).__name__}")
        for candidate in (value, value.strip()):
            if len(candidate) >= MIN_SECRET_LENGTH:
                out.add(candidate)
    return frozenset(out)


def register_secrets(values: Iterable[str | None], *, replace: bool = False) -> None:
    """Make ``values`` secret for every later :func:`redact` call in this process.

    Parameters
    ----------
    values : iterable of str or None
        The configured secret values (e.g. every variable of ``agents.config.SECRET_VARIABLES``
        found in the environment). None, and values shorter than :data:`MIN_SECRET_LENGTH`,
        are skipped.
    replace : bool, default False
        Forget the values registered before (the command line does this once per invocation,
        so that a process only ever redacts its current configuration).

    Raises
    ------
    TypeError
        ``values`` is a single string, or holds something that is neither a string nor None.
    """
    global _registered
    clean = _clean(values)
    with _lock:
        _registered = clean if replace else _registered | clean


def _variants(secret: str) -> set[str]:
    forms = {secret}
    head, colon, tail = secret.partition(":")
    if colon and head and len(tail) >= MIN_SECRET_LENGTH:
        forms.add(tail)
    out: set[str] = set()
    for form in forms:
        out |= {form, quote(form, safe=""), quote(form), quote_plus(form), json.dumps(form)[1:-1],
                json.dumps(form, ensure_ascii=False)[1:-1]}
    return {v for v in out if len(v) >= MIN_SECRET_LENGTH}


@functools.lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for secret in secrets:
        forms |= _variants(secret)
    if not forms:
        return None
    # Longest first, so that a whole token is replaced before its secret half.
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f)))
    return re.compile(alternatives, re.IGNORECASE)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret replaced by :data:`REDACTED` (see the module notes).

    Parameters
    ----------
    text : str
        Any text: an error message, a log line, a JSON document, a traceback.
    secrets : iterable of str or None, optional
        Secrets to redact besides the ones registered with :func:`register_secrets`
        (an adapter passes its own credentials). None and short values are skipped.

    Returns
    -------
    str
        The text without the secrets; the same text when none occurs.

    Raises
    ------
    TypeError
        ``text`` is not a string, or ``secrets`` is malformed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    extra = _clean(secrets)
    with _lock:
        known = _registered
    pattern = _pattern(known | extra)
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that removes secrets from every record it sees.

    Install it on handlers (``handler.addFilter``): it formats the record's message once
    with the secrets replaced (so neither ``msg`` nor ``args`` carry them any more), and
    redacts the formatted traceback too.

    Parameters
    ----------
    secrets : iterable of str or None, optional
        Secrets besides the registered ones (see :func:`redact`).
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets = _clean(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's problem, not ours
            return True
        clean = redact(message, self._secrets)
        if clean != message or record.args:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


class RedactingStream:
    """A text stream that writes everything through :func:`redact` to another stream.

    The command line puts it in front of ``sys.stdout`` and ``sys.stderr`` while a command
    runs, as the last safety net for human output and ``--json``. Each ``write`` is redacted
    on its own; every other attribute is the wrapped stream's.

    Parameters
    ----------
    stream : text stream
        Where the redacted text goes.
    secrets : iterable of str or None, optional
        Secrets besides the registered ones.
    """

    def __init__(self, stream: TextIO, secrets: Iterable[str | None] = ()) -> None:
        self._stream = stream
        self._secrets = _clean(secrets)

    @property
    def wrapped(self) -> TextIO:
        """The stream written to."""
        return self._stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text, self._secrets) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
