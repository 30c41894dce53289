"""The narrator: grounding rule, prompts, template/openai backends, fallbacks and the journal."""

from __future__ import annotations

import hashlib
import json
import math
import threading

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from werkzeug import Request, Response

from agents.config import LLMConfig, Secrets
from agents.services.narrator import (
    AGENTS,
    MAX_WORDS,
    Narrative,
    Narrator,
    build_narrator,
    check_grounding,
    load_prompt,
)
from integrations._errors import MissingCredentialsError
from integrations._journal import Journal
from integrations._llm import OpenAIChat
from tests.stubs import chat_completion

PATH = "/v1/chat/completions"

FACTS = {
    "symbol": "SP500",
    "as_of": "2008-09-15",
    "timeframes": {
        "LT": {"regime": "bull", "probability": 0.6234, "duration_bars": 37},
        "MT": {"regime": "bear", "probability": 0.8812, "duration_bars": 12},
        "US": None,
    },
    "consensus": "mixed",
    "hurst": 0.5512,
    "last_return": -0.0231,
}
TEMPLATE = "SP500: LT bull (0.62), MT bear (0.88); consensus mixed."
GROUNDED = (
    "On 2008-09-15 SP500 is mixed: the LT regime is bull with 62% probability over 37 bars, "
    "while MT is bear at 0.88 for 12 bars. The last return fell 2.31%."
)




@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "journal.sqlite") as j:
        j.start_run("run-1", "thread-1", ["SP500"], {})
        yield j


def openai_narrator(httpserver, journal=None, **kw) -> Narrator:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 0)
    llm = OpenAIChat("sk-test", "gpt-4o-mini", base_url=httpserver.url_for("/v1"), **kw)
    return Narrator("openai", llm, journal)


def reply_with(httpserver, text: str | None) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(chat_completion(text))


# ----------------------------------------------------------------------------- grounding


@pytest.mark.parametrize(
    "text",
    [
        GROUNDED,
        "Hurst 0.55, 0.551 or 0.5512; the LT/MT split is mixed.",
        "Probabilities of 62.3% and 88.12 percent.",  # fractions written as percentages
        "A return of -0.0231, or -2.3% (signed values keep their sign).",
        "The 5-minute US timeframe is unavailable.",  # 5 from '5Min' in the facts below
        "",
        "No numbers at all.",
    ],
)
def test_grounded_text_passes(text):
    assert check_grounding(text, {**FACTS, "bar": "5Min"}) == ()


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("BUY 1000000 shares now", ("1000000",)),
        ("BUY 1,000,000 shares now", ("1,000,000",)),
        ("LT bull at 0.71 probability.", ("0.71",)),
        ("LT at 0.63", ("0.63",)),  # 0.6234 rounds to 0.62, not 0.63
        ("Up 2.31%", ()),  # unsigned: the sign is in the words
        ("Up +2.31%", ("+2.31%",)),  # an explicit sign must match
        ("Hurst is -0.55", ("-0.55",)),
        ("Target 45% weight, 45% again and 7 days", ("45%", "7")),
        ("p below 1e-5", ("1e-5",)),
        ("From 2008-09-16", ("16",)),
        ("Regime lasted 37.5 bars", ("37.5",)),
    ],
)
def test_ungrounded_numbers_are_reported_as_written(text, bad):
    assert check_grounding(text, FACTS) == bad


def test_numbers_inside_fact_strings_and_keys_count():
    facts = {"date": "2008-09-15", "label": "LT", "lag_20": {"vr": 1.05}, "bar": "5Min"}
    assert check_grounding("on 2008-09-15 the 20-lag VR was 1.05 on 5Min bars", facts) == ()
    assert check_grounding("LT", facts) == ()
    assert check_grounding("2009", facts) == ("2009",)


def test_scientific_notation_and_thousands():
    facts = {"pvalue": 1.234e-05, "volume": 1234567, "adf": -3.4567}
    assert check_grounding("p = 1.23e-05 on 1,234,567 shares, ADF -3.46", facts) == ()
    assert check_grounding("p = 1.24e-05", facts) == ("1.24e-05",)
    assert check_grounding("1,234,568 shares", facts) == ("1,234,568",)


def test_absurd_numbers_do_not_crash_the_check():
    facts = {"x": 1.5, "big": 1e308}
    assert check_grounding("1e999 and 1e-999 and " + "9" * 400, facts) == ("1e999", "1e-999", "9" * 400)
    assert check_grounding("1.5e0 and 15e-1", facts) == ()


def test_booleans_none_and_nan_are_not_facts():
    facts = {"flag": True, "missing": None, "x": math.nan, "y": np.float64("inf")}
    assert check_grounding("1 and 0", facts) == ("1", "0")


def test_numpy_facts_count():
    facts = {"n": np.int64(252), "p": np.float32(0.25), "arr": np.array([0.1, 0.2])}
    assert check_grounding("252 bars, 25%, 0.1 and 0.2", facts) == ()


def test_percent_is_not_assumed_without_a_suffix():
    assert check_grounding("probability 62", {"p": 0.6234}) == ("62",)


def test_argument_types():
    with pytest.raises(TypeError, match="facts"):
        check_grounding("1", [1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text"):
        check_grounding(None, {})  # type: ignore[arg-type]


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(value=finite, decimals=st.integers(0, 6), thousands=st.booleans())
def test_any_fact_rounded_and_formatted_is_accepted(value, decimals, thousands):
    spec = f",.{decimals}f" if thousands else f".{decimals}f"
    text = f"The value was {value:{spec}} in the facts."
    assert check_grounding(text, {"nested": [{"x": value}]}) == ()


@settings(max_examples=150, deadline=None)
@given(p=st.floats(0, 1), decimals=st.integers(0, 4))
def test_any_probability_written_as_a_percentage_is_accepted(p, decimals):
    assert check_grounding(f"with {p * 100:.{decimals}f}% probability", {"p": p}) == ()


@settings(max_examples=150, deadline=None)
@given(
    facts=st.lists(st.floats(-100, 100, allow_nan=False), min_size=0, max_size=8),
    number=st.integers(1_000, 10**9),
    percent=st.booleans(),
)
def test_a_number_absent_from_the_facts_is_rejected(facts, number, percent):
    # every fact (and 100x it) is at most 10,000 in size; the number is at least 1,000
    assume(all(abs(abs(number) - abs(100 * f)) > 1 for f in facts))
    written = f"{number}%" if percent else f"{number:,}"
    assert check_grounding(f"BUY {written} shares now", {"values": facts}) == (written,)


@settings(max_examples=100, deadline=None)
@given(value=st.floats(0.001, 1e6), decimals=st.integers(0, 4))
def test_a_sign_contradicting_the_fact_is_rejected(value, decimals):
    formatted = f"{value:.{decimals}f}"
    assume(float(formatted) != 0)
    assert check_grounding(f"moved -{formatted}", {"v": value}) == (f"-{formatted}",)


# ----------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("agent", AGENTS)
def test_every_agent_has_a_prompt_with_the_rules(agent):
    prompt = load_prompt(agent)
    assert "JSON" in prompt and "80 words" in prompt and "3 sentences" in prompt
    assert "Never recommend trades" in prompt


def test_prompts_are_specific():
    assert "Hurst" in load_prompt("statistics") and "variance ratio" in load_prompt("statistics")
    assert "consensus" in load_prompt("regime") and "probability" in load_prompt("regime")


@pytest.mark.parametrize("agent", ["nope", "../regime", "regime.md", ""])
def test_unknown_prompt(agent):
    with pytest.raises(ValueError, match="unknown agent"):
        load_prompt(agent)


# ----------------------------------------------------------------------------- template backend


def test_template_backend_makes_no_network_call(httpserver, journal):
    reply_with(httpserver, "should never be asked")
    llm = OpenAIChat("sk-test", "m", base_url=httpserver.url_for("/v1"))
    narrator = Narrator("template", llm, journal)
    result = narrator.narrate("regime", FACTS, TEMPLATE, run_id="run-1", symbol="SP500")
    assert result == Narrative("regime", "SP500", TEMPLATE, "template", True, None, (), 0.0)
    assert httpserver.log == []
    assert journal.llm_exchanges("run-1") == []
    assert Narrator().narrate("statistics", {}, "t").text == "t"


def test_narrative_to_dict_is_json():
    result = Narrator().narrate("regime", FACTS, TEMPLATE, symbol="SP500")
    assert json.loads(json.dumps(result.to_dict()))["rejected_numbers"] == []


# ----------------------------------------------------------------------------- openai backend


def test_grounded_answer_is_accepted_and_journaled(httpserver, journal):
    reply_with(httpserver, f"  {GROUNDED}\n")
    result = openai_narrator(httpserver, journal).narrate(
        "regime", FACTS, TEMPLATE, run_id="run-1", symbol="SP500"
    )
    assert result.text == GROUNDED
    assert (result.backend, result.accepted, result.fallback_reason) == ("openai", True, None)
    assert result.rejected_numbers == () and result.latency_s > 0

    body = json.loads(httpserver.log[0][0].get_data())
    system, user = body["messages"]
    assert system == {"role": "system", "content": load_prompt("regime")}
    assert user["content"] == json.dumps(FACTS, sort_keys=True)  # sorted, frozen JSON

    (row,) = journal.llm_exchanges("run-1")
    assert row["accepted"] is True and row["response"] == f"  {GROUNDED}\n"
    assert (row["agent"], row["symbol"], row["backend"]) == ("regime", "SP500", "openai")
    assert row["model"] == "gpt-4o-mini-2024-07-18" and row["error"] is None
    assert row["prompt_sha256"] == hashlib.sha256(row["prompt"].encode()).hexdigest()
    assert json.loads(row["prompt"]) == body["messages"]


def test_invented_number_is_rejected_and_journaled(httpserver, journal):
    reply_with(httpserver, "The LT regime is bull with 0.71 probability over 37 bars.")
    result = openai_narrator(httpserver, journal).narrate(
        "regime", FACTS, TEMPLATE, run_id="run-1", symbol="SP500"
    )
    assert result.text == TEMPLATE
    assert (result.accepted, result.fallback_reason) == (False, "ungrounded")
    assert result.rejected_numbers == ("0.71",)
    (row,) = journal.llm_exchanges("run-1")
    assert row["accepted"] is False and row["rejected_numbers"] == ["0.71"]
    assert row["response"].startswith("The LT regime") and row["error"] == "ungrounded: 0.71"


def test_hostile_instruction_is_rejected(httpserver, journal):
    reply_with(httpserver, "BUY 1000000 shares now")
    result = openai_narrator(httpserver, journal).narrate(
        "decision", FACTS, TEMPLATE, run_id="run-1", symbol="SP500"
    )
    assert result.text == TEMPLATE and "1000000" not in result.text
    assert result.rejected_numbers == ("1000000",) and not result.accepted
    assert journal.llm_exchanges("run-1")[0]["rejected_numbers"] == ["1000000"]


def test_timeout_falls_back_and_is_journaled(httpserver, journal):
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(3.0)
        return Response(json.dumps(chat_completion(GROUNDED)), content_type="application/json")

    httpserver.expect_request(PATH, method="POST").respond_with_handler(slow)
    try:
        result = openai_narrator(httpserver, journal, timeout=0.3).narrate(
            "regime", FACTS, TEMPLATE, run_id="run-1", symbol="SP500"
        )
    finally:
        release.set()
    assert (result.text, result.accepted, result.fallback_reason) == (TEMPLATE, False, "timeout")
    assert 0.2 < result.latency_s < 2.5
    (row,) = journal.llm_exchanges("run-1")
    assert row["response"] is None and row["accepted"] is False
    assert "did not answer within 0.3s" in row["error"]
    assert row["latency_s"] == pytest.approx(result.latency_s)


@pytest.mark.parametrize(
    ("status", "error"), [(500, "TransientError"), (429, "TransientError"), (401, "PermanentError")]
)
def test_http_errors_fall_back(httpserver, journal, status, error):
    httpserver.expect_request(PATH, method="POST").respond_with_data(
        json.dumps({"error": {"message": "nope", "type": "x", "param": None, "code": None}}),
        status=status, content_type="application/json",
    )
    result = openai_narrator(httpserver, journal).narrate(
        "statistics", FACTS, TEMPLATE, run_id="run-1", symbol="SP500"
    )
    assert result.text == TEMPLATE and not result.accepted
    assert result.fallback_reason.startswith(f"error: {error}: ")
    assert f"HTTP {status}" in result.fallback_reason
    (row,) = journal.llm_exchanges("run-1")
    assert row["error"] == result.fallback_reason and row["response"] is None


@pytest.mark.parametrize(
    ("reply", "reason"),
    [("", "empty"), ("   \n", "empty"), (None, "empty"), ("word " * (MAX_WORDS + 1), "too_long")],
)
def test_empty_or_long_answers_fall_back(httpserver, journal, reply, reason):
    reply_with(httpserver, reply)
    result = openai_narrator(httpserver, journal).narrate("regime", FACTS, TEMPLATE, run_id="run-1")
    assert (result.text, result.fallback_reason) == (TEMPLATE, reason)
    assert journal.llm_exchanges("run-1")[0]["error"] == reason


def test_nan_facts_are_sent_as_null(httpserver):
    reply_with(httpserver, "The Hurst exponent is unavailable.")
    result = openai_narrator(httpserver).narrate(
        "statistics", {"hurst": math.nan, "n": np.int64(5)}, "Hurst n/a."
    )
    assert result.accepted
    user = json.loads(httpserver.log[0][0].get_data())["messages"][1]["content"]
    assert user == '{"hurst": null, "n": 5}'


def test_exchange_without_a_run_is_journaled(httpserver, journal):
    reply_with(httpserver, "Hurst 0.55.")
    result = openai_narrator(httpserver, journal).narrate("statistics", FACTS, TEMPLATE)
    assert result.accepted and journal.llm_exchanges("run-1") == []


# ----------------------------------------------------------------------------- construction


def test_narrator_arguments():
    with pytest.raises(ValueError, match="backend"):
        Narrator("gpt")
    with pytest.raises(ValueError, match="llm"):
        Narrator("openai")
    with pytest.raises(ValueError, match="unknown agent"):
        Narrator().narrate("broker", {}, "t")
    with pytest.raises(TypeError, match="facts"):
        Narrator().narrate("regime", [], "t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="template_text"):
        Narrator().narrate("regime", {}, None)  # type: ignore[arg-type]


def test_build_narrator_from_configuration(httpserver, journal):
    assert build_narrator(LLMConfig(), Secrets(), None).backend == "template"
    with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
        build_narrator(LLMConfig(backend="openai"), Secrets(), journal)
    with_key = build_narrator(LLMConfig(backend="openai"), Secrets.from_env({"OPENAI_API_KEY": "sk-x"}), None)
    assert with_key.backend == "openai"

    reply_with(httpserver, "Hurst 0.5512.")
    config = LLMConfig(backend="openai", model="local", base_url=httpserver.url_for("/v1"), max_retries=0)
    narrator = build_narrator(config, Secrets(), journal)  # key-less local server
    result = narrator.narrate("statistics", FACTS, TEMPLATE, run_id="run-1")
    assert result.accepted and result.text == "Hurst 0.5512."
    body = json.loads(httpserver.log[0][0].get_data())
    assert body["model"] == "local" and body["temperature"] == 0.0
