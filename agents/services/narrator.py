"""Words from the LLM, checked against the numbers from code.

Every agent computes its figures deterministically and a template summary of them. The
:class:`Narrator` either returns that template (the offline ``template`` backend) or asks an
LLM to rephrase the facts, and keeps the LLM's text only if :func:`check_reply` accepts it:
not empty, not too long, and — after control and invisible characters are stripped — every
number in it is one of the facts (:func:`check_grounding`, which also reads numbers in words,
in other scripts and with multipliers), and it holds no instruction, markup, trade direction
the facts do not propose, or claim of certainty. Otherwise, and on any time-out or error, the
template is used and the reason recorded. The LLM's text is only ever returned as
:attr:`Narrative.text`; nothing in the decision, risk or execution path reads a narrative.

This module must not import broker, order, risk-gate or execution code (a test checks the
import graph).
"""

from __future__ import annotations

import json
import math
import numbers
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from agents.config import LLMConfig, Secrets
from analytics import json_safe
from integrations import IntegrationError, Journal, LLMTimeoutError, OpenAIChat

__all__ = [
    "Narrative",
    "Narrator",
    "ReplyCheck",
    "check_grounding",
    "check_reply",
    "load_prompt",
    "build_narrator",
    "AGENTS",
    "BACKENDS",
    "MAX_CHARS",
    "MAX_WORDS",
    "REJECTION_REASONS",
]

#: Agents that have a prompt file ``prompts/<agent>.md``.
AGENTS: tuple[str, ...] = (
    "regime",
    "statistics",
    "ml_signal",
    "decision",
    "portfolio",
    "risk_gate",
    "execution",
    "reporting",
)
BACKENDS: tuple[str, ...] = ("template", "openai")
#: LLM text longer than this many words is refused (the prompts ask for <= 80).
MAX_WORDS = 120
#: Default longest LLM narrative, in characters (``llm.max_narrative_chars``; the prompts ask
#: for at most 500).
MAX_CHARS = 600
#: Why the template replaced an LLM reply, in the order :func:`check_reply` reports them;
#: ``'timeout'`` and ``'error: …'`` come from the call itself.
REJECTION_REASONS: tuple[str, ...] = (
    "empty", "too_long", "ungrounded", "instruction", "markup", "direction", "claim",
)


@dataclass(frozen=True)
class Narrative:
    """A short prose summary of one agent's reasoning.

    Attributes
    ----------
    agent : str
    symbol : str or None
    text : str
        The LLM's text (sanitised, see :func:`check_reply`) when accepted, otherwise the
        agent's template summary.
    backend : {'template', 'openai'}
    accepted : bool
        True when the LLM's text was used, or the backend is ``template``.
    fallback_reason : str or None
        Why the template replaced the LLM's text: one of :data:`REJECTION_REASONS`,
        ``'timeout'`` or ``'error: <ErrorClass>: <message>'``; None otherwise.
    rejected_numbers : tuple of str
        Numbers in the LLM's text that are not among the facts, as written.
    latency_s : float
        Seconds spent waiting for the LLM (0 for the template backend).
    rejected_phrases : tuple of str, default ()
        Instructions, markup, trade directions and claims found in the LLM's text.
    sanitised : tuple of str, default ()
        Kinds of characters removed from the LLM's text before it was checked (and shown).
    """

    agent: str
    symbol: str | None
    text: str
    backend: str
    accepted: bool
    fallback_reason: str | None
    rejected_numbers: tuple[str, ...]
    latency_s: float
    rejected_phrases: tuple[str, ...] = ()
    sanitised: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for the graph state and reports."""
        out = asdict(self)
        for key in ("rejected_numbers", "rejected_phrases", "sanitised"):
            out[key] = list(getattr(self, key))
        return out


# --------------------------------------------------------------------------- text clean-up

# Terminal control sequences, removed whole so that no '[2J' is left behind: CSI (ESC [ ... or
# the 8-bit 0x9b), OSC (ESC ] ... BEL/ST, e.g. OSC 8 hyperlinks; unterminated ones run to the
# end, as in a terminal), DCS/SOS/PM/APC strings, and the other two-character escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
#: Sanitisation kinds, in the order they are reported.
_SANITISE_KINDS = ("escape_sequence", "control_character", "bidi_control", "invisible_character")


def _sanitise(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` without control/format characters and with whitespace runs made one space."""
    found: set[str] = set()
    if _ESCAPES.search(text):
        found.add("escape_sequence")
        text = _ESCAPES.sub("", text)
    out: list[str] = []
    for ch in text:
        if ch in _LINE_BREAKS:
            out.append(" ")
            continue
        category = unicodedata.category(ch)
        if category == "Cc":
            found.add("control_character")
        elif ch in _BIDI:
            found.add("bidi_control")
        elif category in ("Cf", "Co", "Cn", "Cs"):
            # zero-width characters, soft hyphens, tag characters ('ASCII smuggling'),
            # private-use and unassigned code points: nothing a reader can see
            found.add("invisible_character")
        else:
            out.append(ch)
            continue
    clean = " ".join("".join(out).split())
    return clean, tuple(k for k in _SANITISE_KINDS if k in found)


# Letters that look like Latin ones (Cyrillic, Greek): folded so that 'ѕуѕtеm:' reads 'system:'.
_CONFUSABLES = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0455\u0456\u0458\u0501\u04bb\u051b\u051d\u0261"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0405\u0406\u0408"
    "\u03bf\u03bd\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7",
    "aeopcyxsijdhqwg"
    "ABEKMHOPCTXSIJ"
    "ovABEZHIKMNOPTYX",
)
# Separators used by other scripts, read as their ASCII meaning.
_PUNCTUATION = {"\u066a": "%", "\u066b": ".", "\u066c": ",", "\u2044": "/", "\u2215": "/", "\u2212": "\u2212"}


class _View:
    """A normalised reading of a text, and where each of its characters came from.

    Compatibility forms are unfolded (NFKC: full-width '５' and superscript '⁵' are '5', '¾' is
    '3/4'), decimal digits of every script become ASCII digits ('٥' is '5'), Latin look-alike
    letters become Latin letters. ``origin[i]`` is the index in the text of ``norm[i]``.
    """

    __slots__ = ("text", "norm", "origin")

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            if ch in _PUNCTUATION:
                mapped = _PUNCTUATION[ch]
            elif ch.isascii():
                mapped = ch
            else:
                mapped = "".join(
                    str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c
                    for c in unicodedata.normalize("NFKC", ch)
                ).translate(_CONFUSABLES)
                mapped = "".join(_PUNCTUATION.get(c, c) for c in mapped)
            chars.append(mapped)
            origin.extend([i] * len(mapped))
        self.text = text
        self.norm = "".join(chars)
        self.origin = origin

    def raw(self, start: int, end: int) -> str:
        """The original text behind ``norm[start:end]``, as written."""
        return self.text[self.origin[start] : self.origin[end - 1] + 1].strip()


# --------------------------------------------------------------------------- numbers

# A number: optional sign (only when not glued to a preceding word or number, so the hyphens in
# "2008-09-15" or "0.5-0.7" are not minus signs), digits with optional comma thousands
# separators, optional decimals, an optional exponent ('e6') or power ('10^6'), and an optional
# unit: percent, per mille or basis points, or a multiplier ('5k', '2.5M', '3bn', '5 thousand').
# A small 'a/b' is a fraction. The multiplier letters are case-sensitive: '5m' is five minutes.
_NUMBER = re.compile(
    r"(?P<fraction>(?<![\w.,/^])(?P<num>\d{1,6})\s?/\s?(?P<den>\d{1,6})(?![\w/]|[.,]\d))"
    r"|(?:(?<![\w.])(?P<sign>[-+\u2212]))?"
    r"(?P<body>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?|(?<!\d)\.(?P<frac0>\d+))"
    r"(?:(?P<exp>[eE][-+\u2212]?\d+)|\s?(?:\^|\*\*)\s?(?P<power>[-+\u2212]?\d{1,4}))?"
    r"(?:(?P<pct>\s?%|\s*(?:percent|per\s*cent|pct)\b)"
    r"|(?P<permille>\s?\u2030|\s*per\s*mille?\b)"
    r"|(?P<bps>\s*(?:bps|bp|basis\s+points?)\b)"
    r"|\s*(?P<scale_word>hundred|thousand|million|billion|trillion)\b"
    r"|(?P<scale>(?-i:k|K|MM|M|mn|B|bn|T|tn))\b)?",
    re.IGNORECASE,
)
_UNIT_FACTOR = {"": 1.0, "%": 100.0, "\u2030": 1000.0, "bps": 10000.0}
_SCALES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
           "k": 1e3, "K": 1e3, "M": 1e6, "MM": 1e6, "mn": 1e6, "B": 1e9, "bn": 1e9, "T": 1e12, "tn": 1e12}


@dataclass(frozen=True)
class _Number:
    raw: str
    value: float  # multipliers applied; in the unit below
    tolerance: float
    signed: bool
    unit: str = ""  # '', '%', '‰' or 'bps'
    parts: tuple[float, ...] = ()  # numerator and denominator of a fraction 'a/b'


def _unit_of(match: re.Match[str]) -> str:
    if match.group("pct"):
        return "%"
    if match.group("permille"):
        return "\u2030"
    return "bps" if match.group("bps") else ""


def _parse(match: re.Match[str], raw: str | None = None) -> _Number:
    raw = match.group(0).strip() if raw is None else raw
    if match.group("fraction"):
        num, den = int(match.group("num")), int(match.group("den"))
        value = num / den if den else math.nan
        return _Number(raw, value, 0.005, False, "", (float(num), float(den)))
    body = match.group("body").replace(",", "")
    decimals = len(match.group("frac") or match.group("frac0") or "")
    sign = match.group("sign")
    negative = sign in ("-", "\u2212")
    if match.group("power") is not None:
        power = int(match.group("power").replace("\u2212", "-"))
        try:
            magnitude = float(Decimal(body) ** power)
        except (ArithmeticError, OverflowError):
            magnitude = math.inf
        value = -magnitude if negative else magnitude
        # A power is exact: it must equal a fact (up to float precision).
        return _Number(raw, value, 0.0, sign is not None, _unit_of(match))
    exponent = 0
    if match.group("exp"):
        exponent = int(match.group("exp")[1:].replace("\u2212", "-"))
    scale = _SCALES.get(match.group("scale") or (match.group("scale_word") or "").lower(), 1.0)
    magnitude = Decimal(body).scaleb(exponent) * Decimal(scale)
    value = float(-magnitude if negative else magnitude)
    # Half a unit in the last displayed place: any value within it rounds to what is written.
    # Absurd exponents ('1e999') must not crash the check: such a number matches no finite fact.
    place = max(min(exponent - decimals, 300), -330)
    tolerance = 0.5 * 10.0**place * scale
    if not math.isfinite(value):
        tolerance = 0.0
    return _Number(raw, value, tolerance, sign is not None, _unit_of(match))


# Numbers written in words. Vague quantities ('few', 'double', 'hundreds') and ordinals
# ('third timeframe', 'second') are not numbers; 'half' is, and so is a fraction word after a
# count ('two thirds', 'a quarter').
_WORD_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_WORD_UNITS["nought"] = _WORD_UNITS["naught"] = 0
_WORD_TENS = {
    w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())
}
_WORD_INTEGERS = frozenset(_WORD_UNITS) | frozenset(_WORD_TENS)
_WORD_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_WORD_DENOMINATORS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
    "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
    "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10, "hundredth": 100, "hundredths": 100,
    "thousandth": 1000, "thousandths": 1000, "millionth": 1e6, "millionths": 1e6,
}
_WORD = re.compile(r"[A-Za-z]+")
_WORD_GAP = re.compile(r"[ \-]*")


class _Words:
    """Scans a normalised text for numbers written in English words."""

    def __init__(self, norm: str, taken: list[tuple[int, int]]) -> None:
        self.norm = norm
        covered = bytearray(len(norm) + 1)
        for start, end in taken:
            covered[start:end] = b"\x01" * (end - start)
        self.tokens = [
            (m.group(0).lower(), m.start(), m.end())
            for m in _WORD.finditer(norm)
            if not any(covered[m.start() : m.end()])
        ]

    def _word(self, k: int) -> str | None:
        return self.tokens[k][0] if k < len(self.tokens) else None

    def _next(self, k: int) -> str | None:
        """The word after token ``k`` when only spaces or hyphens separate them."""
        if k + 1 >= len(self.tokens):
            return None
        if _WORD_GAP.fullmatch(self.norm, self.tokens[k][2], self.tokens[k + 1][1]) is None:
            return None
        return self.tokens[k + 1][0]

    def numbers(self) -> list[tuple[int, int, float, float, str]]:
        """``(start, end, value, tolerance, unit)`` of every number in words, in order."""
        found = []
        i = 0
        while i < len(self.tokens):
            parsed = self._phrase(i)
            if parsed is None:
                i += 1
                continue
            last, value, tolerance = parsed
            end, unit = self.tokens[last][2], ""
            nxt = self._next(last)
            if nxt in ("percent", "pct"):
                last, unit = last + 1, "%"
            elif nxt == "per" and self._next(last + 1) in ("cent", "mille", "mill"):
                last, unit = last + 2, "%" if self._word(last + 2) == "cent" else "\u2030"
            elif nxt in ("bps", "bp"):
                last, unit = last + 1, "bps"
            elif nxt == "basis" and self._next(last + 1) in ("point", "points"):
                last, unit = last + 2, "bps"
            end = self.tokens[last][2]
            symbol = re.match(r"\s?([%\u2030])", self.norm[end:])
            if not unit and symbol:
                unit, end = ("%" if symbol.group(1) == "%" else "\u2030"), end + symbol.end()
            found.append((self.tokens[i][1], end, value, tolerance, unit))
            i = last + 1
        return found

    def _phrase(self, i: int) -> tuple[int, float, float] | None:
        """The number starting at token ``i``: (index of its last token, value, tolerance)."""
        word = self._word(i)
        if word == "half":
            return i, 0.5, 0.05
        k = i
        count_words = {"hundred", "dozen", *_WORD_SCALES, *_WORD_DENOMINATORS}
        article = word in ("a", "an") and self._next(i) in count_words
        if article:
            k = i + 1
        total, scale_tol, end = 0.0, 0.0, None
        current = 1.0 if article else 0.0
        last_kind = "article" if article else None
        while k < len(self.tokens) and (k == i or self._next(k - 1) is not None):
            w = self._word(k)
            if w in _WORD_UNITS:
                # 'five six' is two numbers; 'twenty-five' one, 'twenty twelve' and 'twenty zero' two
                if last_kind in ("unit", "article") or last_kind == "tens" and not 0 < _WORD_UNITS[w] < 10:
                    break
                current += _WORD_UNITS[w]
                last_kind = "unit"
            elif w in _WORD_TENS:
                if last_kind in ("unit", "tens", "article"):
                    break
                current += _WORD_TENS[w]
                last_kind = "tens"
            elif w in ("hundred", "dozen"):
                if last_kind not in ("unit", "tens", "article"):
                    break
                current = (current or 1.0) * (100.0 if w == "hundred" else 12.0)
                last_kind = "hundred"
            elif w in _WORD_SCALES:
                if last_kind is None or (last_kind == "scale" and not current):
                    break
                total += (current or 1.0) * _WORD_SCALES[w]
                current, last_kind, scale_tol = 0.0, "scale", 0.5 * _WORD_SCALES[w]
            elif w == "and" and last_kind in ("hundred", "scale") and self._next(k) in _WORD_INTEGERS:
                k += 1
                continue
            else:
                break
            end = k
            k += 1
        if end is None:
            if not article:
                return None
            end = i  # 'a' before a denominator: the count is one
        value = total + current
        tolerance = scale_tol if last_kind == "scale" and not current else 0.5
        nxt = self._next(end)
        if nxt == "point":
            digits, j = "", end + 1
            while self._next(j) in _WORD_UNITS and _WORD_UNITS[self._next(j)] < 10:
                j += 1
                digits += str(_WORD_UNITS[self._word(j)])
            if digits:
                value += float("0." + digits)
                tolerance = 0.5 * 10.0 ** -len(digits)
                end = j
                if self._next(end) in _WORD_SCALES:
                    end += 1
                    value *= _WORD_SCALES[self._word(end)]
                    tolerance *= _WORD_SCALES[self._word(end)]
                return end, value, tolerance
        if nxt in _WORD_DENOMINATORS and last_kind in ("unit", "tens", "hundred", "article"):
            end += 1
            value /= _WORD_DENOMINATORS[self._word(end)]
            tolerance = 0.05 if abs(value * 10 - round(value * 10)) < 1e-9 else 0.005
            return end, value, tolerance
        if last_kind == "article":
            return None  # 'a' alone
        if nxt == "and" and self._next(end + 1) in ("a", "one") and self._next(end + 2) == "half":
            return end + 3, value + 0.5, 0.05
        return end, value, tolerance


def _numbers(view: _View) -> list[_Number]:
    """Every number in a normalised text, in order: digits, words, other numerals."""
    found: list[tuple[int, _Number]] = []
    taken: list[tuple[int, int]] = []
    for match in _NUMBER.finditer(view.norm):
        found.append((match.start(), _parse(match, view.raw(match.start(), match.end()))))
        taken.append((match.start(), match.end()))
    for start, end, value, tolerance, unit in _Words(view.norm, taken).numbers():
        found.append((start, _Number(view.raw(start, end), value, tolerance, False, unit)))
    # Numerals the rules above cannot read ('五百', 'Ⅻ' is letters after NFKC and is not one):
    # a single one is its value, a run of them matches nothing.
    for match in re.finditer(r"[^\x00-\x7f]+", view.norm):
        start = None
        for j in range(match.start(), match.end() + 1):
            numeric = j < match.end() and unicodedata.numeric(view.norm[j], None) is not None
            if numeric and start is None:
                start = j
            elif not numeric and start is not None:
                run = view.norm[start:j]
                value = unicodedata.numeric(run) if len(run) == 1 else math.nan
                found.append((start, _Number(view.raw(start, j), value, 0.0, False)))
                start = None
    found.sort(key=lambda item: item[0])
    return [n for _, n in found]


@dataclass(frozen=True)
class _Fact:
    value: float  # as written
    unit: str  # '', '%', '‰' or 'bps': how the fact itself is expressed

    @property
    def fraction(self) -> float:
        return self.value / _UNIT_FACTOR[self.unit]


_PERCENT_KEY = re.compile(r"(?:^|_)(?:pct|percent)$", re.IGNORECASE)
_BPS_KEY = re.compile(r"(?:^|_)bps$", re.IGNORECASE)


def _fact_values(facts: Any, out: list[_Fact], unit: str = "") -> None:
    if facts is None or isinstance(facts, bool):
        return
    if isinstance(facts, str):
        for match in _NUMBER.finditer(facts):
            number = _parse(match)
            out.append(_Fact(number.value, number.unit or unit))
            out.extend(_Fact(p, "") for p in number.parts)
    elif isinstance(facts, (numbers.Real, Decimal)):
        value = float(facts)
        if math.isfinite(value):
            out.append(_Fact(value, unit))
    elif isinstance(facts, Mapping):
        for key, value in facts.items():
            _fact_values(key, out)
            key_unit = unit
            if isinstance(key, str):
                key_unit = "%" if _PERCENT_KEY.search(key) else "bps" if _BPS_KEY.search(key) else unit
            _fact_values(value, out, key_unit)
    elif isinstance(facts, (list, tuple, set, frozenset)):
        for value in facts:
            _fact_values(value, out, unit)
    else:
        # Anything else (numpy arrays, dataclasses, dates) is seen as the LLM sees it: as JSON.
        _fact_values(json_safe(facts), out, unit)


def _candidates(number: _Number, fact: _Fact) -> list[float]:
    if number.unit == "":
        values = [fact.value] if fact.unit == "" else [fact.value, fact.fraction]
    elif fact.unit or abs(fact.fraction) <= 1.0:
        # A share written as a percentage (0.62 as '62%'); never a count or a level ('500%' is
        # not the 500 in 'SP500').
        values = [fact.fraction * _UNIT_FACTOR[number.unit]]
    else:
        return []
    return values if number.signed else values + [abs(v) for v in values]


def _matches(value: float, tolerance: float, facts: list[_Fact], number: _Number) -> bool:
    for fact in facts:
        for candidate in _candidates(number, fact):
            # Slack for binary floating point on top of the rounding half-unit.
            slack = tolerance * 1e-9 + 1e-12 * max(1.0, abs(candidate))
            if abs(value - candidate) <= tolerance + slack:
                return True
    return False


def _grounded(number: _Number, facts: list[_Fact]) -> bool:
    if math.isfinite(number.value) and _matches(number.value, number.tolerance, facts, number):
        return True
    if number.parts:
        # 'a/b' may also be two facts side by side (a count of a total, a date).
        whole = _Number(number.raw, 0.0, 0.5, False)
        return all(_matches(p, 0.5, facts, whole) for p in number.parts)
    return False


def _facts(facts: Mapping) -> list[_Fact]:
    values: list[_Fact] = []
    _fact_values(facts, values)
    return list(dict.fromkeys(values))  # each distinct fact once


def _ungrounded(view: _View, facts: list[_Fact]) -> tuple[str, ...]:
    offending: list[str] = []
    for number in _numbers(view):
        if not _grounded(number, facts) and number.raw not in offending:
            offending.append(number.raw)
    return tuple(offending)


# --------------------------------------------------------------------------- phrases

# Text that addresses the system, the gate or the reader: role labels and chat-template tags,
# 'ignore'/'override'-style commands, orders to approve or execute, second person, requests.
_INSTRUCTION = re.compile(
    "|".join([
        r"\b(?:system|assistant|user|developer|human|admin|operator|tool)\s*:",
        r"<\|[^|<>]{0,40}\|>|\[/?(?:inst|sys|system|admin)\]|<</?sys>>",
        r"#{2,}\s*(?:instructions?|system|response|prompt)\b",
        r"\b(?:ignore|disregard|forget|overrid(?:e|es|ing|den)|overrule|bypass|circumvent|jailbreak)\b",
        r"\b(?:approve|execute|place|submit|send|resend|cancel)\s+(?:all|every|each|any|the|these|those|this|"
        r"pending|my|our|them|it|everything|orders?|trades?|immediately|now)\b",
        r"\byou(?:r|rs|rself|'re|'ll|'ve|'d)?\b",
        r"\b(?:i|we)\s+(?:recommend|suggest|advise|urge)\b",
        r"\bplease\b",
        r"\b(?:must|should|shall|needs?\s+to|ha(?:s|ve)\s+to|ought\s+to)\s+(?:now\s+|immediately\s+|also\s+)?"
        r"(?:approve|buy|sell|ignore|execute|override|be\s+approved|trade|increase|reduce|exit|go|place|send|"
        r"halt|resume|disable|stop)\b",
        r"\b(?:new|updated|previous|prior|above|earlier|original|hidden|secret)\s+"
        r"(?:instructions?|prompts?|rules?|directives?)\b",
        r"\b(?:system|developer)\s+prompt\b|\bact\s+as\b|\bpretend\b|\bfrom\s+now\s+on\b|\bdeveloper\s+mode\b",
        r"\bdo\s+anything\s+now\b|\brole[-\s]?play\b|\b(?:switch|turn)\s+off\b|\bdisable\b",
    ]),
    re.IGNORECASE,
)
# Markup a renderer could act on and addresses to go to: HTML/XML tags and entities, markdown
# links, images, code, headings and emphasis, URLs, domains, e-mail addresses, @mentions.
_MARKUP = re.compile(
    "|".join([
        r"</?[a-z][a-z0-9-]*(?:\s[^<>]*)?/?>",
        r"<(?:script|iframe|img|svg|style|object|embed|link|meta|form|input)\b",
        r"&(?:#\d{1,7}|#x[0-9a-f]{1,6}|[a-z]{2,10});",
        r"!?\[[^\]]*\](?:\(|\[)",
        r"`",
        r"\b(?:https?|ftp|file|javascript|data|vbscript|mailto|tg|wss?)\s*:",
        r"\bwww\.",
        r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
        r"(?<![\w.-])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ru|cn|xyz|info|biz|ly|me|co|app|dev|top|site|"
        r"online|link|click|sh|gg|example)\b",
        r"(?<![\w@])@[a-z_]\w{3,}",
        r"^#{1,6}\s|\*\*|__",
    ]),
    re.IGNORECASE,
)
# What a trade recommendation acts on ('increase exposure', 'cuts its SP500 position').
_OBJECT = (
    r"\s+(?:\S+\s+){0,3}?(?:exposure|positions?|holdings?|stakes?|allocations?|weight(?:ing)?s?|shares|stocks?|"
    r"equit(?:y|ies))\b"
)
_UP = re.compile(
    r"\b(?:buy|buys|buying|bought|purchas(?:e|es|ed|ing))\b(?![-\s]and[-\s]hold)"
    r"|\b(?:go|goes|going|gone|went)\s+long\b|\baccumulat(?:e|es|ed|ing)\b|\bload(?:s|ed|ing)?\s+up\b"
    r"|\boverweight\b"
    r"|\b(?:increas(?:e|es|ed|ing)|rais(?:e|es|ed|ing)|boost(?:s|ed|ing)?|lift(?:s|ed|ing)?|grow(?:s|ing|n)?|grew"
    r"|build(?:s|ing)?|built|expand(?:s|ed|ing)?|add(?:s|ed|ing)?(?:\s+to)?|top(?:s|ped|ping)?\s+up"
    r"|scal(?:e|es|ed|ing)\s+up)" + _OBJECT,
    re.IGNORECASE,
)
_DOWN = re.compile(
    r"\b(?:sell|sells|selling|sold)\b(?![-\s]?off)"
    r"|\bshort(?:s|ed|ing)\b|\b(?:go|goes|going|gone|went)\s+short\b"
    r"|\bshort\s+(?:the|it|them|sp500|nasdaq|positions?|exposure|sale)\b"
    r"|\bliquidat(?:e|es|ed|ing)\b|\bdump(?:s|ed|ing)?\b|\bunderweight\b|\btak(?:e|es|ing)\s+profits?\b"
    r"|\bcash(?:es|ing)?\s+out\b|\bde-?risk(?:s|ed|ing)?\b"
    r"|\b(?:exit(?:s|ed|ing)?|clos(?:e|es|ed|ing)|unwind(?:s|ing)?|unwound)\s+(?:the\s+|all\s+|its\s+|their\s+)?"
    r"(?:positions?|trades?|holdings?|stakes?|market)\b"
    r"|\b(?:reduc(?:e|es|ed|ing)|cut(?:s|ting)?|trim(?:s|med|ming)?|lower(?:s|ed|ing)?|decreas(?:e|es|ed|ing)"
    r"|shrink(?:s|ing)?|shrank|par(?:e|es|ed|ing)|scal(?:e|es|ed|ing)\s+(?:back|down)|wind(?:s|ing)?\s+down)"
    + _OBJECT,
    re.IGNORECASE,
)
# Forecasts and certainty the facts cannot back: guarantees, 'no risk', hyperbole, horizons.
_CLAIM = re.compile(
    "|".join([
        r"\bguarantee(?:s|d)?\b|\brisk[-\s]?free\b|\briskless\b|\b(?:no|zero)[-\s](?:downside|risk|loss(?:es)?)\b",
        r"\b(?:can(?:not|'t)|won't|will\s+not|never)\s+(?:lose|fail|go\s+down|fall)\b",
        r"\bsure\s+(?:thing|bet|win)\b|\bcertain(?:ly)?\s+to\b|\bwill\s+(?:definitely|certainly|surely)\b",
        r"\b(?:downside|risk|loss(?:es)?|drawdowns?)(?:\s+risk)?\s+(?:is|are|of|at|will\s+be|stays?|remains?)\s+"
        r"(?:impossible|zero|nil|none|negligible|non-?existent|0+(?:\.0+)?(?!\.?\d)\s?%?)",
        r"\bwill\s+(?:\w+\s+)?(?:double|triple|quadruple|soar|skyrocket|moon|explode|surge|crash|collapse"
        r"|plunge)\b",
        r"\bto\s+the\s+moon\b|\bsoar(?:s|ed|ing)?\b|\bskyrocket\w*",
        r"\b(?:this|next|coming)\s+(?:year|month|week|quarter)\b|\bby\s+(?:year[-\s]?end|the\s+end\s+of)\b",
        r"\bprice\s+target\b|\btarget\s+price\b",
    ]),
    re.IGNORECASE,
)


def _decision_sides(facts: Any, out: set[str]) -> set[str]:
    """The order sides ('buy', 'sell') the facts propose: order strings or ``side`` fields."""
    if isinstance(facts, str):
        match = re.match(r"\s*(buy|sell)\b", facts, re.IGNORECASE)
        if match:
            out.add(match.group(1).lower())
    elif isinstance(facts, Mapping):
        for key, value in facts.items():
            if key == "side" and isinstance(value, str) and value.lower() in ("buy", "sell"):
                out.add(value.lower())
            else:
                _decision_sides(value, out)
    elif isinstance(facts, (list, tuple)):
        for value in facts:
            _decision_sides(value, out)
    return out


def _phrases(pattern: re.Pattern[str], view: _View) -> tuple[str, ...]:
    return tuple(dict.fromkeys(view.raw(m.start(), m.end()) for m in pattern.finditer(view.norm)))


# --------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class ReplyCheck:
    """The verdict of :func:`check_reply` on one LLM reply.

    Attributes
    ----------
    text : str
        The reply as it would be shown: control and invisible characters removed, whitespace
        runs made single spaces. Empty when the reply was too long to be examined.
    reason : str or None
        None when the reply may be shown; otherwise its first problem, one of
        :data:`REJECTION_REASONS`.
    rejected_numbers : tuple of str
        Numbers not among the facts, as written (see :func:`check_grounding`).
    rejected_phrases : tuple of str
        Instructions, markup, trade directions and claims found, as written.
    sanitised : tuple of str
        What was removed before checking: ``'escape_sequence'``, ``'control_character'``,
        ``'bidi_control'``, ``'invisible_character'``.
    problems : tuple of (str, tuple of str)
        Every problem found, ``(reason, items)``, in the order of :data:`REJECTION_REASONS`.
    """

    text: str
    reason: str | None
    rejected_numbers: tuple[str, ...]
    rejected_phrases: tuple[str, ...]
    sanitised: tuple[str, ...]
    problems: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def accepted(self) -> bool:
        """True when the reply may be shown (as :attr:`text`)."""
        return self.reason is None

    @property
    def detail(self) -> str | None:
        """The journal's account of the refusal: ``'ungrounded: 0.71; instruction: SYSTEM:'``."""
        if self.reason is None:
            return None
        return "; ".join(f"{r}: {', '.join(items)}" if items else r for r, items in self.problems)


def check_grounding(text: str, facts: Mapping) -> tuple[str, ...]:
    """The numbers in ``text`` that are not among ``facts`` after rounding.

    Parameters
    ----------
    text : str
        Prose to check (typically an LLM's summary).
    facts : Mapping
        The facts the prose may draw on: nested mappings, lists and scalars.

    Returns
    -------
    tuple of str
        The offending numbers as written in ``text`` (e.g. ``'1000000'``, ``'12.5%'``,
        ``'one million'``, ``'٥٠٠'``), in order of first appearance, without repeats. Empty
        when the text is grounded.

    Raises
    ------
    TypeError
        ``text`` not a string or ``facts`` not a mapping.

    Notes
    -----
    **Reading the text.** Control and invisible characters are removed first (a zero-width
    space cannot split a number), then compatibility forms are unfolded (NFKC: full-width
    ``'５００'``, superscript ``'⁵'``, circled ``'⑤'``, mathematical ``'𝟓'`` and ``'¾'`` read as
    ASCII), and decimal digits of any script are read as digits (Arabic-Indic ``'٥٠٠'``,
    Devanagari ``'५००'``, Thai ``'๕๐๐'`` are 500; ``'٪'``, ``'٫'``, ``'٬'`` are ``%``, ``.``,
    ``,``).

    **Numbers in digits.** Every maximal run of digits is a number, wherever it stands
    (``'SP500'`` contains 500, ``'5-minute'`` contains 5), with:

    * comma thousands separators (``'1,000,000'`` is one million; a comma not followed by
      exactly three digits separates two numbers, ``'2,4'`` is 2 and 4);
    * decimals (``'0.62'``, ``'.5'``), an exponent (``'1.2e-05'``) or a power (``'10^6'``,
      which must equal a fact exactly);
    * a sign ``-``, ``+`` or ``\u2212`` only when it is not glued to a preceding word or number:
      in ``'2008-09-15'`` or ``'0.5-0.7'`` the hyphens are not minus signs;
    * a multiplier: ``k``/``K`` (thousand), ``M``/``MM``/``mn`` (million), ``B``/``bn``
      (billion), ``T``/``tn`` (trillion) glued to the number, or the words ``hundred`` …
      ``trillion`` after it (``'5k'`` is 5000; lower-case ``'5m'`` is not a multiplier);
    * a unit: ``'%'``, ``'percent'``, ``'per cent'``, ``'pct'``; ``'‰'``, ``'per mille'``;
      ``'bps'``, ``'bp'``, ``'basis points'``;
    * ``'a/b'`` (at most six digits each, not part of a date such as ``'2008/09/15'``) is a
      fraction.

    **Numbers in words** (English): ``'zero'`` … ``'nineteen'``, tens (``'twenty-five'``),
    ``'hundred'``, ``'dozen'``, ``'thousand'`` … ``'trillion'`` (``'one hundred and five'``,
    ``'a million'``), decimals (``'zero point five five'``), fractions (``'half'``, ``'a
    half'``, ``'two thirds'``, ``'nine tenths'``, ``'one and a half'``), with the units above
    (``'ninety-five percent'``). Vague quantities (``'few'``, ``'double'``, ``'hundreds'``) and
    ordinals (``'the third timeframe'``) are not numbers. Other numerals (``'五百'``) match
    only as a single character with a numeric value; a run of them matches nothing.

    **Numbers in the facts.** Every finite int, float (numpy included) and Decimal anywhere in
    the structure, keys included, and every number inside a string, read by the digit rules
    above (``'2008-09-15'`` gives 2008, 9 and 15; ``'5Min'`` gives 5; ``'5%'`` is a percentage;
    a label like ``'LT'`` gives none). A value under a key ending in ``pct``/``percent`` is a
    percentage, under a key ending in ``bps`` basis points. Booleans, None, NaN and infinities
    are not numbers.

    **The rule.** A number written with ``d`` decimals (mantissa decimals minus the exponent,
    times any multiplier) matches a fact value ``v`` when ``|x - c| <= 0.5 * 10**-d`` (plus
    float slack), i.e. ``x`` is ``c`` correctly rounded to the displayed precision, for a
    candidate ``c``:

    * a number without a unit: ``v`` itself (a fact given as a percentage also as a share:
      ``'5%'`` may be written ``0.05``);
    * a number with a unit: ``v`` expressed in that unit — a share ``|v| <= 1`` times 100 for
      ``%``, 1000 for ``‰``, 10000 for ``bps`` (0.62 as ``'62%'``, 0.001 as ``'10 bps'``),
      or a fact that is itself a percentage or basis points, converted. A count or a level is
      never a percentage: with the facts ``{'symbol': 'SP500'}``, ``'500%'`` is rejected;
    * ``|c|`` as well when the text number has no sign (a sign written as a word: a return
      of -0.023 may be written "fell 2.3%"); a number written with a sign must match the
      signed value.

    Numbers in words match to their precision: integers within 0.5 (``'one million'`` within
    half a million, like ``'1e6'``), decimals to their last place, fractions to one decimal
    when exact there (``'nine tenths'`` is 0.9 ± 0.05) and otherwise to two (``'two thirds'``
    matches 0.67). A fraction ``'a/b'`` matches when ``a/b`` rounds to a fact at two
    decimals, or when ``a`` and ``b`` are both facts (a count of a total). Truncation is not
    rounding (``0.629`` may be written ``0.63`` but not ``0.62``).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if not isinstance(facts, Mapping):
        raise TypeError(f"facts must be a mapping, got {type(facts).__name__}")
    clean, _ = _sanitise(text)
    return _ungrounded(_View(clean), _facts(facts))


def check_reply(
    text: str, facts: Mapping, *, max_chars: int = MAX_CHARS, max_words: int = MAX_WORDS
) -> ReplyCheck:
    """Whether an LLM's reply may be shown to a person in place of the template summary.

    Parameters
    ----------
    text : str
        The reply as received.
    facts : Mapping
        The facts the reply was asked to summarise.
    max_chars : int, default :data:`MAX_CHARS`
        Longest acceptable reply, in characters, as received less surrounding whitespace.
    max_words : int, default :data:`MAX_WORDS`
        Longest acceptable reply, in words.

    Returns
    -------
    ReplyCheck
        Its :attr:`~ReplyCheck.reason` is the first of :data:`REJECTION_REASONS` that applies,
        or None when the reply may be shown as :attr:`~ReplyCheck.text`.

    Raises
    ------
    TypeError
        ``text`` not a string, ``facts`` not a mapping, a limit not an int.
    ValueError
        A limit below 1.

    Notes
    -----
    In order:

    1. ``empty``: nothing but whitespace.
    2. ``too_long``: over ``max_chars`` characters or ``max_words`` words, as received (escape
       sequences and invisible characters count). Such a reply is rejected, not truncated: a
       cut can drop a negation or a qualifier, and the prompts ask for far less.
    3. Sanitising: terminal escape sequences (CSI such as ``ESC[2J``, OSC such as hyperlinks,
       DCS/APC strings, their 8-bit forms) are removed whole; C0/C1 control characters,
       bidirectional controls, zero-width and other invisible format characters (soft
       hyphen, BOM, tag characters), private-use and unassigned code points are removed;
       line breaks and whitespace runs become single spaces. What remains is what is checked
       and shown. A reply that was only such characters is ``empty``.
    4. ``ungrounded``: a number that is not a fact (:func:`check_grounding`).
    5. ``instruction``: text that addresses the system, the gate or the reader — role labels
       (``'SYSTEM:'``, ``'assistant:'``), chat-template tags (``'<|im_start|>'``,
       ``'[INST]'``), ``ignore``/``disregard``/``override``/``bypass``, ``approve``/``execute``
       /``send`` with an object, ``you``/``your``, ``please``, ``must``/``should`` + an action,
       ``new instructions``, ``act as``, ``from now on``, ``switch off``, ``disable``. Matched
       after full-width forms and Cyrillic/Greek look-alike letters are folded to Latin.
    6. ``markup``: HTML/XML tags and entities, markdown links, images, code, headings and
       emphasis, URLs (any scheme, ``www.``), domain names, e-mail addresses, @mentions.
    7. ``direction``: a trade direction the facts do not propose. Buying (``buy``,
       ``purchase``, ``go long``, ``accumulate``, ``overweight``, ``increase``/``add``/``raise``
       … exposure, position, weight, shares) is allowed only when the facts propose a buy
       order (an order string ``'buy …'`` or a ``side`` of ``'buy'``); selling (``sell``,
       ``short`` as a verb, ``go short``, ``liquidate``, ``exit``/``close`` a position,
       ``reduce``/``cut``/``trim``/``lower`` … exposure, position, weight) only when they
       propose a sell. With no order in the facts (a flat decision, or an agent that decides
       nothing) any direction is refused. Negation is not parsed: "does not buy" is refused too.
    8. ``claim``: certainty or forecasts — ``guaranteed``, ``risk-free``, ``no risk``,
       ``cannot lose``, "downside risk is 0%", ``will double``/``soar``/``crash``, ``to the
       moon``, "this/next year|month|week|quarter", "by year-end", ``price target``.

    Every category is examined; :attr:`~ReplyCheck.problems` lists all that were found.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if not isinstance(facts, Mapping):
        raise TypeError(f"facts must be a mapping, got {type(facts).__name__}")
    for name, limit in (("max_chars", max_chars), ("max_words", max_words)):
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise TypeError(f"{name} must be an int, got {type(limit).__name__}")
        if limit < 1:
            raise ValueError(f"{name} must be at least 1, got {limit}")
    stripped = text.strip()
    if not stripped:
        return ReplyCheck("", "empty", (), (), (), (("empty", ()),))
    if len(stripped) > max_chars or len(stripped.split()) > max_words:
        # Not examined further: the length alone disqualifies it.
        return ReplyCheck("", "too_long", (), (), (), (("too_long", ()),))
    clean, sanitised = _sanitise(stripped)
    if not clean:
        return ReplyCheck("", "empty", (), (), sanitised, (("empty", ()),))
    view = _View(clean)
    sides = _decision_sides(facts, set())
    found = {
        "ungrounded": _ungrounded(view, _facts(facts)),
        "instruction": _phrases(_INSTRUCTION, view),
        "markup": _phrases(_MARKUP, view),
        "direction": (() if "buy" in sides else _phrases(_UP, view))
        + (() if "sell" in sides else _phrases(_DOWN, view)),
        "claim": _phrases(_CLAIM, view),
    }
    problems = tuple((reason, items) for reason, items in found.items() if items)
    phrases = tuple(dict.fromkeys(p for reason, items in problems if reason != "ungrounded" for p in items))
    reason = problems[0][0] if problems else None
    return ReplyCheck(clean, reason, found["ungrounded"], phrases, sanitised, problems)


# --------------------------------------------------------------------------- prompts


@cache
def load_prompt(agent: str) -> str:
    """The system prompt of one agent, read from ``prompts/<agent>.md``.

    Parameters
    ----------
    agent : str
        One of :data:`AGENTS`.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``agent`` has no prompt.
    """
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; agents with prompts are {', '.join(AGENTS)}")
    return resources.files("prompts").joinpath(f"{agent}.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- narrator


class Narrator:
    """Turns an agent's facts into a short narrative, LLM-written only when it passes the check.

    Parameters
    ----------
    backend : {'template', 'openai'}, default 'template'
        ``template`` returns the agent's own summary and makes no network call.
    llm : OpenAIChat, optional
        Required for the ``openai`` backend; ignored by ``template``.
    journal : Journal, optional
        When given, every LLM exchange (accepted or not) is appended to it.
    max_chars : int, default :data:`MAX_CHARS`
        Longest LLM narrative accepted, in characters (see :func:`check_reply`).

    Raises
    ------
    ValueError
        Unknown backend, ``openai`` without ``llm``, or ``max_chars`` below 1.
    TypeError
        ``max_chars`` not an int.
    """

    def __init__(
        self,
        backend: str = "template",
        llm: OpenAIChat | None = None,
        journal: Journal | None = None,
        *,
        max_chars: int = MAX_CHARS,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "openai" and llm is None:
            raise ValueError("the openai backend needs an llm client (OpenAIChat)")
        if not isinstance(max_chars, int) or isinstance(max_chars, bool):
            raise TypeError(f"max_chars must be an int, got {type(max_chars).__name__}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        self._backend = backend
        self._llm = llm
        self._journal = journal
        self._max_chars = max_chars

    @property
    def backend(self) -> str:
        """``'template'`` or ``'openai'``."""
        return self._backend

    def narrate(
        self,
        agent: str,
        facts: Mapping,
        template_text: str,
        *,
        run_id: str | None = None,
        symbol: str | None = None,
    ) -> Narrative:
        """Summarise ``facts`` in prose.

        Parameters
        ----------
        agent : str
            One of :data:`AGENTS`; selects the system prompt.
        facts : Mapping
            The agent's figures. Sent to the LLM as sorted JSON (NaN as null) and used for the
            grounding check.
        template_text : str
            The agent's deterministic summary: the result of the ``template`` backend and the
            fallback for the ``openai`` backend.
        run_id : str, optional
            Journal the exchange under this run.
        symbol : str, optional

        Returns
        -------
        Narrative
            With the ``openai`` backend the LLM's text is used, sanitised, only if
            :func:`check_reply` accepts it (at most ``max_chars`` characters and
            :data:`MAX_WORDS` words); otherwise, and on a time-out or an integration error,
            ``template_text`` with the reason. The exchange is journaled with the raw reply
            and, when refused, every problem found (``'ungrounded: 0.71; instruction: SYSTEM:'``).

        Raises
        ------
        ValueError
            Unknown agent.
        TypeError
            ``facts`` not a mapping or ``template_text`` not a string; with the ``openai``
            backend also a fact of a type :func:`analytics.json_safe` cannot
            convert to JSON.
        JournalError
            The exchange could not be journaled (e.g. ``run_id`` was never started).
        """
        if agent not in AGENTS:
            raise ValueError(f"unknown agent {agent!r}; agents are {', '.join(AGENTS)}")
        if not isinstance(facts, Mapping):
            raise TypeError(f"facts must be a mapping, got {type(facts).__name__}")
        if not isinstance(template_text, str):
            raise TypeError(f"template_text must be a string, got {type(template_text).__name__}")
        if self._backend == "template":
            return Narrative(agent, symbol, template_text, "template", True, None, (), 0.0)

        assert self._llm is not None
        frozen = json_safe(facts)
        system = load_prompt(agent)
        user = json.dumps(frozen, sort_keys=True, allow_nan=False, ensure_ascii=False)
        prompt = json.dumps(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            ensure_ascii=False,
        )
        model: str | None = self._llm.model
        response: str | None = None
        check: ReplyCheck | None = None
        reason: str | None
        error: str | None
        start = time.perf_counter()
        try:
            reply = self._llm.complete(system, user)
        except LLMTimeoutError as exc:
            latency, reason, error = time.perf_counter() - start, "timeout", str(exc)
        except IntegrationError as exc:
            latency = time.perf_counter() - start
            reason = error = f"error: {type(exc).__name__}: {exc}"
        else:
            latency, model, response = reply.latency_s, reply.model, reply.text
            check = check_reply(reply.text or "", frozen, max_chars=self._max_chars)
            reason, error = check.reason, check.detail

        accepted = reason is None
        rejected = check.rejected_numbers if check is not None else ()
        if self._journal is not None:
            self._journal.record_llm_exchange(
                run_id,
                agent,
                symbol,
                backend=self._backend,
                model=model,
                prompt=prompt,
                response=response,
                accepted=accepted,
                rejected_numbers=list(rejected),
                latency_s=max(latency, 0.0),
                error=error,
            )
        phrases = check.rejected_phrases if check is not None else ()
        sanitised = check.sanitised if check is not None else ()
        if accepted:
            assert check is not None
            return Narrative(agent, symbol, check.text, "openai", True, None, (), latency, (), sanitised)
        return Narrative(
            agent, symbol, template_text, "openai", False, reason, rejected, latency, phrases, sanitised
        )


def build_narrator(llm_config: LLMConfig, secrets: Secrets, journal: Journal | None) -> Narrator:
    """The narrator the configuration asks for.

    Parameters
    ----------
    llm_config : LLMConfig
        ``backend``, ``model``, ``base_url``, ``timeout``, ``max_retries``, ``temperature``,
        ``max_narrative_chars``.
    secrets : Secrets
        ``openai_api_key`` is read from here (``OPENAI_API_KEY``).
    journal : Journal or None

    Returns
    -------
    Narrator

    Raises
    ------
    MissingCredentialsError
        The ``openai`` backend without ``OPENAI_API_KEY`` and without a ``base_url``.
    """
    max_chars = llm_config.max_narrative_chars
    if llm_config.backend == "template":
        return Narrator("template", None, journal, max_chars=max_chars)
    llm = OpenAIChat(
        secrets.get("openai_api_key"),
        llm_config.model,
        base_url=llm_config.base_url,
        timeout=llm_config.timeout,
        max_retries=llm_config.max_retries,
        temperature=llm_config.temperature,
    )
    return Narrator(llm_config.backend, llm, journal, max_chars=max_chars)
