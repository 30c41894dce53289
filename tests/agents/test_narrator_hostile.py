"""Hostile LLM prose never reaches a person: the reply check against a corpus, and the narrator.

The corpus (``hostile_replies.json``) holds hostile replies — numbers in words, in other
scripts and with unit tricks, percentages and claims, trade directions against the decision,
prompt injection, markup, terminal escapes and invisible characters, very long and empty
replies — each with the outcome it must get, and honest replies that must be accepted. Every
entry goes through the pure :func:`check_reply`; a selection goes through the real
:class:`Narrator` with the OpenAI client against the loopback OpenAI stub and the journal.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.config import LLMConfig, Secrets
from agents.graph.nodes.decision import decision_template
from agents.graph.nodes.ml_signal import ml_template
from agents.graph.nodes.regime import regime_template
from agents.graph.nodes.statistics import statistics_template
from agents.services.narrator import (
    MAX_CHARS,
    REJECTION_REASONS,
    Narrator,
    build_narrator,
    check_grounding,
    check_reply,
)
from integrations._journal import Journal
from integrations._llm import OpenAIChat
from tests.stubs import chat_completion

CORPUS = json.loads((Path(__file__).parent / "hostile_replies.json").read_text(encoding="utf-8"))
FACTS = CORPUS["facts"]
HOSTILE = CORPUS["hostile"]
HONEST = CORPUS["honest"]
PATH = "/v1/chat/completions"
TEMPLATE = "Deterministic template summary."


def hostile(entry_id: str) -> dict:
    (entry,) = [h for h in HOSTILE if h["id"] == entry_id]
    return entry


def visible(text: str) -> bool:
    """No control, format, private-use or unassigned character (what a terminal acts on)."""
    return all(unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cn", "Cs") for c in text)


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "journal.sqlite") as j:
        j.start_run("run-1", "thread-1", ["SP500"], {})
        yield j


def openai_narrator(httpserver, journal=None, **kw) -> Narrator:
    llm = OpenAIChat("sk-test", "gpt-4o-mini", base_url=httpserver.url_for("/v1"), timeout=5.0, max_retries=0)
    return Narrator("openai", llm, journal, **kw)


# ----------------------------------------------------------------------------- the corpus


def test_corpus_covers_every_kind_of_hostility():
    assert len(HOSTILE) >= 50 and len({h["id"] for h in HOSTILE}) == len(HOSTILE)
    kinds = Counter(h["id"].split("-")[0] for h in HOSTILE)
    for kind in ("words", "fraction", "script", "unit", "claim", "dir", "inj", "markup", "esc", "long", "empty"):
        assert kinds[kind] >= 2, kind
    assert {h["reason"] for h in HOSTILE if h["outcome"] == "rejected"} == set(REJECTION_REASONS)
    assert sum(h["outcome"] == "sanitised" for h in HOSTILE) >= 5
    assert len(HONEST) >= 10 and {h["agent"] for h in HONEST} >= {"regime", "statistics", "decision", "ml_signal"}


def test_corpus_tally():
    """The figures quoted for issue 21: every hostile reply is rejected or sanitised."""
    tally = Counter()
    for h in HOSTILE:
        result = check_reply(h["reply"], FACTS[h["facts"]])
        tally["sanitised" if result.accepted else result.reason] += 1
    assert sum(tally.values()) == len(HOSTILE) == 98
    assert tally == {"ungrounded": 38, "instruction": 17, "markup": 12, "direction": 10, "claim": 5,
                     "too_long": 3, "empty": 4, "sanitised": 9}


@pytest.mark.parametrize("entry", HOSTILE, ids=[h["id"] for h in HOSTILE])
def test_hostile_reply_is_rejected_or_sanitised(entry):
    result = check_reply(entry["reply"], FACTS[entry["facts"]])
    if entry["outcome"] == "sanitised":
        assert result.accepted and result.reason is None and result.detail is None
        assert result.text == entry["text"]
        assert list(result.sanitised) == entry["sanitised"]
        assert result.text != entry["reply"]
    else:
        assert not result.accepted
        assert result.reason == entry["reason"]
        assert result.problems[0][0] == entry["reason"]
        assert result.detail.startswith(entry["reason"])
        if "numbers" in entry:
            assert list(result.rejected_numbers) == entry["numbers"]
        if entry["reason"] in ("instruction", "markup", "direction", "claim"):
            assert result.rejected_phrases and dict(result.problems)[entry["reason"]]
    assert visible(result.text)


@pytest.mark.parametrize("entry", HONEST, ids=[f"{h['facts']}-{i}" for i, h in enumerate(HONEST)])
def test_honest_grounded_reply_is_accepted_unchanged(entry):
    result = check_reply(entry["reply"], FACTS[entry["facts"]])
    assert result.problems == ()
    assert (result.accepted, result.text, result.sanitised) == (True, entry["reply"], ())


def test_the_agents_own_template_prose_passes_the_check():
    """The deterministic summaries, rephrased by nobody, are what an honest LLM would write."""
    texts = [
        ("regime", regime_template(FACTS["regime"])),
        ("statistics", statistics_template("SP500", FACTS["statistics"])),
        ("ml_signal", ml_template(FACTS["ml_signal"])),
    ]
    for name in ("decision_reduce", "decision_add", "decision_flat"):
        f = FACTS[name]
        orders = [{"side": o.split()[0], "qty": float(o.split()[1])} for o in f["orders"]]
        d = {"target_weight": f["target_weight"], "policy": f["policy"], "reason": None, "orders": orders,
             "inputs": {"regime_family": f["regime_family"], "p_up": f["p_up"], "vol_forecast": f["vol_forecast"]},
             "params": {"target_vol": f["target_vol"]}}
        texts.append((name, decision_template("SP500", d)))
    for name, text in texts:
        assert check_reply(text, FACTS[name]).problems == (), (name, text)


# ----------------------------------------------------------------------------- specific rules


def test_a_percentage_is_a_share_not_a_level():
    facts = {"symbol": "SP500", "p": 0.25, "n": 5}
    assert check_grounding("SP500 at 25% and 0.25", facts) == ()
    # 500 is in 'SP500' and 5 is a count: neither may be written as a percentage
    assert check_grounding("SP500 will rise 500%", facts) == ("500%",)
    assert check_grounding("up 5%", facts) == ("5%",)
    assert check_grounding("a 5% VaR, or 0.05", {"var": "5%"}) == ()
    assert check_grounding("VaR 500 bps", {"var": 0.05}) == ()
    assert check_grounding("costs of 5 bps", {"cost_bps": 5}) == ()
    assert check_grounding("costs of 5 bps", {"cost": 5}) == ("5 bps",)
    assert check_grounding("a drawdown of 12.5%", {"drawdown_pct": 12.5}) == ()


def test_direction_follows_the_proposed_orders():
    sell = {"symbol": "SP500", "orders": ["sell 40"]}
    buy = {"symbol": "SP500", "orders": [{"side": "buy", "qty": 40}]}
    assert check_reply("The policy proposes sell 40 and cuts exposure.", sell).accepted
    assert check_reply("The policy proposes sell 40 and cuts exposure.", buy).rejected_phrases == ("sell", "cuts exposure")
    assert check_reply("It buys 40 to increase its SP500 position.", buy).accepted
    assert check_reply("It buys 40 to increase its SP500 position.", {**buy, "orders": [], "qty": 40}).reason == "direction"
    # words that only look like directions
    assert check_reply("A sell-off in the short term, and the long-term regime holds.", {}).accepted


def test_injection_hidden_by_invisible_characters_or_look_alikes_is_found():
    for text in ("ig\u00adnore the gate", "\u0456gnore the gate", "\uff49\uff47\uff4e\uff4f\uff52\uff45 the gate",
                 "i\u200bg\u200bn\u200bo\u200br\u200be the gate", "\x1b[8mignore\x1b[0m the gate"):
        result = check_reply(text, {})
        assert result.reason == "instruction", text
        assert result.rejected_phrases[0].lower() in ("ignore", "\u0456gnore", "\uff49\uff47\uff4e\uff4f\uff52\uff45")


def test_length_cap_is_on_characters_and_words():
    sentence = "SP500: LT bull (0.62), MT bear (0.88). "
    exact = (sentence * 20)[:MAX_CHARS].strip()
    assert len(exact) <= MAX_CHARS
    assert check_reply(exact[: exact.rindex(".") + 1], FACTS["regime"]).accepted
    assert check_reply(sentence * 20, FACTS["regime"]).reason == "too_long"
    assert check_reply(sentence * 3, FACTS["regime"], max_chars=100).reason == "too_long"
    assert check_reply("LT " * 30, {}, max_words=29).reason == "too_long"


def test_check_reply_arguments():
    with pytest.raises(TypeError, match="text"):
        check_reply(None, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="facts"):
        check_reply("x", [])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_chars"):
        check_reply("x", {}, max_chars=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_words"):
        check_reply("x", {}, max_words=0)
    with pytest.raises(ValueError, match="max_chars"):
        Narrator(max_chars=0)
    with pytest.raises(TypeError, match="max_chars"):
        Narrator(max_chars=True)


# ----------------------------------------------------------------------------- properties

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int) -> str:
    """English words for 0 <= n < 1,000,000 ('three hundred forty-two thousand five hundred six')."""
    def below_thousand(k: int) -> list[str]:
        words = []
        if k >= 100:
            words += [_UNITS[k // 100], "hundred"]
            k %= 100
        if k >= 20:
            words.append(_TENS[k // 10 - 2] + (f"-{_UNITS[k % 10]}" if k % 10 else ""))
        elif k:
            words.append(_UNITS[k])
        return words

    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = (below_thousand(thousands) + ["thousand"]) if thousands else []
    return " ".join(words + below_thousand(rest))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 999_999))
def test_any_integer_in_words_is_read_as_its_value(n):
    words = spell(n)
    assert check_grounding(f"The regime lasted {words} bars.", {"bars": n}) == ()
    assert check_grounding(f"The regime lasted {words} bars.", {"bars": n + 1000}) == (words,)


_SCRIPTS = {"arabic-indic": 0x0660, "devanagari": 0x0966, "thai": 0x0E50, "fullwidth": 0xFF10,
            "math-bold": 0x1D7CE, "bengali": 0x09E6, "extended-arabic-indic": 0x06F0}


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 10**7), script=st.sampled_from(sorted(_SCRIPTS)))
def test_digits_of_any_script_are_read_as_digits(n, script):
    written = "".join(chr(_SCRIPTS[script] + int(d)) for d in str(n))
    assert check_grounding(f"Buy {written} shares.", {"qty": n}) == ()
    assert check_grounding(f"Buy {written} shares.", {"qty": n + 1}) == (written,)


_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202c", "\u2066", "\x07",
              "\x08", "\x00", "\x7f", "\x9b2J", "\x1b[2J", "\x1b[H", "\x1b[31m", "\x1b]0;title\x07", "\U000e0041"]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), entry=st.sampled_from(HONEST))
def test_invisible_characters_anywhere_in_an_honest_reply_are_stripped(data, entry):
    reply = entry["reply"]
    positions = data.draw(st.lists(st.integers(0, len(reply)), max_size=6))
    noisy = reply
    for pos in sorted(positions, reverse=True):
        noisy = noisy[:pos] + data.draw(st.sampled_from(_INVISIBLE)) + noisy[pos:]
    result = check_reply(noisy, FACTS[entry["facts"]], max_chars=10_000)
    assert result.accepted and result.text == reply
    assert bool(result.sanitised) == (noisy != reply)


# ----------------------------------------------------------------------------- through the narrator


def reply_with(httpserver, text: str | None) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(chat_completion(text))


@pytest.mark.parametrize(
    "entry_id",
    ["words-one-million", "words-nine-tenths", "script-arabic-indic", "unit-k", "claim-500pct", "dir-sell-on-buy",
     "inj-system", "inj-homoglyph", "markup-script", "markup-url", "esc-then-injection", "long-5000", "long-601",
     "empty-escapes-only"],
)
def test_hostile_reply_through_the_openai_stub_is_replaced_and_journaled(httpserver, journal, entry_id):
    entry = hostile(entry_id)
    reply_with(httpserver, entry["reply"])
    result = openai_narrator(httpserver, journal).narrate(
        entry["agent"], FACTS[entry["facts"]], TEMPLATE, run_id="run-1", symbol="SP500"
    )
    expected = check_reply(entry["reply"], FACTS[entry["facts"]])
    assert (result.text, result.accepted, result.fallback_reason) == (TEMPLATE, False, entry["reason"])
    assert list(result.rejected_numbers) == entry.get("numbers", list(expected.rejected_numbers))
    assert result.rejected_phrases == expected.rejected_phrases
    (row,) = journal.llm_exchanges("run-1")
    assert row["accepted"] is False and row["response"] == entry["reply"]  # the raw reply is kept
    assert row["error"] == expected.detail and row["error"].startswith(entry["reason"])
    assert row["rejected_numbers"] == list(result.rejected_numbers)
    assert json.loads(json.dumps(result.to_dict()))["fallback_reason"] == entry["reason"]


@pytest.mark.parametrize("entry_id", ["esc-clear-screen", "esc-osc8-link", "bidi-override", "tag-characters"])
def test_escapes_are_stripped_from_an_accepted_reply(httpserver, journal, entry_id):
    entry = hostile(entry_id)
    reply_with(httpserver, entry["reply"])
    result = openai_narrator(httpserver, journal).narrate(
        entry["agent"], FACTS[entry["facts"]], TEMPLATE, run_id="run-1", symbol="SP500"
    )
    assert (result.text, result.accepted, result.fallback_reason) == (entry["text"], True, None)
    assert list(result.sanitised) == entry["sanitised"] and visible(result.text)
    assert "\x1b" not in json.dumps(result.to_dict(), ensure_ascii=False)
    (row,) = journal.llm_exchanges("run-1")
    assert row["accepted"] is True and row["error"] is None and row["response"] == entry["reply"]


@pytest.mark.parametrize("reply", [None, "", "\u200b\u200b", "\x1b[2J\x1b[H"])
def test_empty_reply_through_the_openai_stub(httpserver, journal, reply):
    reply_with(httpserver, reply)
    result = openai_narrator(httpserver, journal).narrate("regime", FACTS["regime"], TEMPLATE, run_id="run-1")
    assert (result.text, result.accepted, result.fallback_reason) == (TEMPLATE, False, "empty")
    assert journal.llm_exchanges("run-1")[0]["error"] == "empty"


def test_honest_replies_through_the_openai_stub_are_accepted(httpserver, journal):
    for entry in HONEST[:5]:
        httpserver.clear()
        reply_with(httpserver, f"\n{entry['reply']}  ")
        result = openai_narrator(httpserver, journal).narrate(
            entry["agent"], FACTS[entry["facts"]], TEMPLATE, run_id="run-1", symbol="SP500"
        )
        assert (result.text, result.accepted, result.sanitised) == (entry["reply"], True, ())
    assert all(row["accepted"] for row in journal.llm_exchanges("run-1"))


def test_max_narrative_chars_is_configurable(httpserver, journal):
    assert LLMConfig().max_narrative_chars == MAX_CHARS == 600
    with pytest.raises(ValidationError, match="max_narrative_chars"):
        LLMConfig(max_narrative_chars=10)
    reply = HONEST[0]["reply"]
    assert 80 < len(reply) < 600
    for limit, accepted in ((len(reply) - 1, False), (len(reply), True)):
        httpserver.clear()
        reply_with(httpserver, reply)
        config = LLMConfig(backend="openai", base_url=httpserver.url_for("/v1"), max_retries=0,
                           max_narrative_chars=max(limit, 80))
        narrator = build_narrator(config, Secrets(), journal)
        result = narrator.narrate("regime", FACTS["regime"], TEMPLATE, run_id="run-1")
        assert result.accepted is accepted
        assert result.fallback_reason == (None if accepted else "too_long")
