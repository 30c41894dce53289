"""Words from the LLM, checked against the numbers from code.

Every agent computes its figures deterministically and a template summary of them. The
:class:`Narrator` either returns that template (the offline ``template`` backend) or asks an
LLM to rephrase the facts, and keeps the LLM's text only if every number in it is one of the
facts (see :func:`check_grounding`). Otherwise, and on any time-out or error, the template is
used and the reason recorded. The LLM's text is only ever returned as :attr:`Narrative.text`;
nothing in the decision, risk or execution path reads a narrative.

This module must not import broker, order, risk-gate or execution code (a test checks the
import graph).
"""

from __future__ import annotations

import json
import math
import numbers
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from agents.config import LLMConfig, Secrets
from integrations._errors import IntegrationError
from integrations._journal import Journal, json_safe
from integrations._llm import LLMTimeoutError, OpenAIChat

__all__ = [
    "Narrative",
    "Narrator",
    "check_grounding",
    "load_prompt",
    "build_narrator",
    "AGENTS",
    "BACKENDS",
    "MAX_WORDS",
]

#: Agents that have a prompt file ``prompts/<agent>.md``.
AGENTS: tuple[str, ...] = (
    "regime",
    "statistics",
    "ml_signal",
    "decision",
    "risk_gate",
    "execution",
    "reporting",
)
BACKENDS: tuple[str, ...] = ("template", "openai")
#: LLM text longer than this many words is refused (the prompts ask for <= 80).
MAX_WORDS = 120


@dataclass(frozen=True)
class Narrative:
    """A short prose summary of one agent's reasoning.

    Attributes
    ----------
    agent : str
    symbol : str or None
    text : str
        The LLM's text when accepted, otherwise the agent's template summary.
    backend : {'template', 'openai'}
    accepted : bool
        True when the LLM's text was used, or the backend is ``template``.
    fallback_reason : str or None
        Why the template replaced the LLM's text: ``'ungrounded'``, ``'empty'``,
        ``'too_long'``, ``'timeout'`` or ``'error: <ErrorClass>: <message>'``; None otherwise.
    rejected_numbers : tuple of str
        Numbers in the LLM's text that are not among the facts, as written.
    latency_s : float
        Seconds spent waiting for the LLM (0 for the template backend).
    """

    agent: str
    symbol: str | None
    text: str
    backend: str
    accepted: bool
    fallback_reason: str | None
    rejected_numbers: tuple[str, ...]
    latency_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for the graph state and reports."""
        out = asdict(self)
        out["rejected_numbers"] = list(self.rejected_numbers)
        return out


# --------------------------------------------------------------------------- grounding

# A number: optional sign (only when not glued to a preceding word or number, so the hyphens in
# "2008-09-15" or "0.5-0.7" are not minus signs), digits with optional comma thousands
# separators, optional decimals, optional exponent, optional percent sign or word.
_NUMBER = re.compile(
    r"(?:(?<![\w.])(?P<sign>[-+\u2212]))?"
    r"(?P<body>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?|(?<!\d)\.(?P<frac0>\d+))"
    r"(?P<exp>[eE][-+\u2212]?\d+)?"
    r"(?P<pct>\s?%|\s*(?:percent|per\s+cent|pct)\b)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Number:
    raw: str
    value: float
    tolerance: float
    signed: bool
    percent: bool


def _parse(match: re.Match[str]) -> _Number:
    body = match.group("body").replace(",", "")
    decimals = len(match.group("frac") or match.group("frac0") or "")
    exponent = 0
    if match.group("exp"):
        exponent = int(match.group("exp")[1:].replace("\u2212", "-"))
    sign = match.group("sign")
    magnitude = Decimal(body).scaleb(exponent)
    value = float(-magnitude if sign in ("-", "\u2212") else magnitude)
    # Half a unit in the last displayed place: any value within it rounds to what is written.
    # Absurd exponents ('1e999') must not crash the check: such a number matches no finite fact.
    place = max(min(exponent - decimals, 300), -330)
    tolerance = 0.5 * 10.0**place
    if not math.isfinite(value):
        tolerance = 0.0
    return _Number(
        raw=match.group(0).strip(),
        value=value,
        tolerance=tolerance,
        signed=sign is not None,
        percent=match.group("pct") is not None,
    )


def _fact_values(facts: Any, out: list[float]) -> None:
    if facts is None or isinstance(facts, bool):
        return
    if isinstance(facts, str):
        out.extend(n.value for n in map(_parse, _NUMBER.finditer(facts)))
    elif isinstance(facts, (numbers.Real, Decimal)):
        value = float(facts)
        if math.isfinite(value):
            out.append(value)
    elif isinstance(facts, Mapping):
        for key, value in facts.items():
            _fact_values(key, out)
            _fact_values(value, out)
    elif isinstance(facts, (list, tuple, set, frozenset)):
        for value in facts:
            _fact_values(value, out)
    else:
        # Anything else (numpy arrays, dataclasses, dates) is seen as the LLM sees it: as JSON.
        _fact_values(json_safe(facts), out)


def _grounded(number: _Number, facts: list[float]) -> bool:
    for fact in facts:
        candidates = [fact] if number.signed else [fact, abs(fact)]
        if number.percent:
            candidates += [c * 100.0 for c in candidates]
        for candidate in candidates:
            # Slack for binary floating point on top of the rounding half-unit.
            slack = number.tolerance * 1e-9 + 1e-12 * max(1.0, abs(candidate))
            if abs(number.value - candidate) <= number.tolerance + slack:
                return True
    return False


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
        The offending numbers as written in ``text`` (e.g. ``'1000000'``, ``'12.5%'``), in
        order of first appearance, without repeats. Empty when the text is grounded.

    Notes
    -----
    **Numbers in the text.** Every maximal run of digits is a number, wherever it stands
    (``'SP500'`` contains 500, ``'5-minute'`` contains 5), with:

    * comma thousands separators (``'1,000,000'`` is one million; a comma not followed by
      exactly three digits separates two numbers, ``'2,4'`` is 2 and 4);
    * decimals (``'0.62'``, ``'.5'``) and an exponent (``'1.2e-05'``);
    * a sign ``-``, ``+`` or ``\u2212`` only when it is not glued to a preceding word or number:
      in ``'2008-09-15'`` or ``'0.5-0.7'`` the hyphens are not minus signs;
    * a percent suffix: ``'%'``, ``'percent'``, ``'per cent'`` or ``'pct'``.

    **Numbers in the facts.** Every finite int, float (numpy included) and Decimal anywhere in
    the structure, keys included, and every number inside a string, read by the same rule
    (``'2008-09-15'`` gives 2008, 9 and 15; ``'5Min'`` gives 5; a label like ``'LT'`` gives
    none). Booleans, None, NaN and infinities are not numbers.

    **The rule.** A text number written with ``d`` decimals (mantissa decimals minus the
    exponent in scientific notation) matches a fact value ``v`` when ``|x - c| <= 0.5 *
    10**-d`` (plus float slack), i.e. ``x`` is ``c`` correctly rounded to the displayed
    precision, for a candidate ``c`` among:

    * ``v`` itself;
    * ``|v|`` when the text number has no sign (a sign written as a word: a return of
      -0.023 may be written "fell 2.3%");
    * ``100 * v`` (and ``100 * |v|`` when unsigned) when the text number carries a percent
      suffix (a probability 0.62 written as "62%").

    A number written with a sign must match the signed value. Truncation is not rounding
    (``0.629`` may be written ``0.63`` but not ``0.62``), and a rounded value cannot be
    re-rounded to fewer places unless that equals rounding the fact itself. Numbers spelled
    in words (``'three'``) are not detected. So ``'BUY 1000000 shares now'`` is rejected unless
    a fact rounds to 1000000.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if not isinstance(facts, Mapping):
        raise TypeError(f"facts must be a mapping, got {type(facts).__name__}")
    values: list[float] = []
    _fact_values(facts, values)
    # Each distinct fact once; order does not matter for the check.
    unique = list(dict.fromkeys(values))
    offending: list[str] = []
    for match in _NUMBER.finditer(text):
        number = _parse(match)
        if not _grounded(number, unique) and number.raw not in offending:
            offending.append(number.raw)
    return tuple(offending)


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
    """Turns an agent's facts into a short narrative, LLM-written only when grounded.

    Parameters
    ----------
    backend : {'template', 'openai'}, default 'template'
        ``template`` returns the agent's own summary and makes no network call.
    llm : OpenAIChat, optional
        Required for the ``openai`` backend; ignored by ``template``.
    journal : Journal, optional
        When given, every LLM exchange (accepted or not) is appended to it.

    Raises
    ------
    ValueError
        Unknown backend, or ``openai`` without ``llm``.
    """

    def __init__(
        self,
        backend: str = "template",
        llm: OpenAIChat | None = None,
        journal: Journal | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "openai" and llm is None:
            raise ValueError("the openai backend needs an llm client (OpenAIChat)")
        self._backend = backend
        self._llm = llm
        self._journal = journal

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
            With the ``openai`` backend the LLM's text is used only if it is non-empty, at most
            :data:`MAX_WORDS` words and :func:`check_grounding` finds nothing; otherwise, and on
            a time-out or an integration error, ``template_text`` with the reason.

        Raises
        ------
        ValueError
            Unknown agent.
        TypeError
            ``facts`` not a mapping or ``template_text`` not a string; with the ``openai``
            backend also a fact of a type :func:`integrations._journal.json_safe` cannot
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
        rejected: tuple[str, ...] = ()
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
            text = reply.text.strip()
            if not text:
                reason = "empty"
            elif len(text.split()) > MAX_WORDS:
                reason = "too_long"  # not checked further: the length alone disqualifies it
            else:
                rejected = check_grounding(text, frozen)
                reason = "ungrounded" if rejected else None
            error = reason
            if reason is not None and rejected:
                error = f"{reason}: {', '.join(rejected)}"

        accepted = reason is None
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
        if accepted:
            assert response is not None
            return Narrative(agent, symbol, response.strip(), "openai", True, None, (), latency)
        return Narrative(agent, symbol, template_text, "openai", False, reason, rejected, latency)


def build_narrator(llm_config: LLMConfig, secrets: Secrets, journal: Journal | None) -> Narrator:
    """The narrator the configuration asks for.

    Parameters
    ----------
    llm_config : LLMConfig
        ``backend``, ``model``, ``base_url``, ``timeout``, ``max_retries``, ``temperature``.
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
    if llm_config.backend == "template":
        return Narrator("template", None, journal)
    llm = OpenAIChat(
        secrets.get("openai_api_key"),
        llm_config.model,
        base_url=llm_config.base_url,
        timeout=llm_config.timeout,
        max_retries=llm_config.max_retries,
        temperature=llm_config.temperature,
    )
    return Narrator(llm_config.backend, llm, journal)
