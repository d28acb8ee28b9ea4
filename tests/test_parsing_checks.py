"""The merger output check (strict training format) and the fact checker's yes/no verdict."""

from __future__ import annotations

import pytest

from avrt.core.parsing import MergerStatus, check_merger_output, parse_fact_check_verdict, response_text

MERGED = (
    "<think>The audio has a driving electronic beat and the frames show cars racing at night; "
    "together they point to an action or racing scene.</think>\n<answer>D</answer>"
)


@pytest.mark.parametrize(
    ("output", "n_options", "status", "letter"),
    [
        (MERGED, 4, MergerStatus.OK, "D"),
        ("<think>x</think><answer>(B)</answer>", 4, MergerStatus.OK, "B"),
        (MERGED, 3, MergerStatus.OUT_OF_RANGE, None),
        ("<think>x</think><answer>D) Action movie</answer>", 4, MergerStatus.INVALID_ANSWER, None),
        ("<think>x</think><answer></answer>", 4, MergerStatus.INVALID_ANSWER, None),
        ("Combined Analysis: " + MERGED, 4, MergerStatus.INVALID_FORMAT, None),
        ("<think>x</think>Answer: D", 4, MergerStatus.INVALID_FORMAT, None),
        ("<think>a</think><think>b</think><answer>D</answer>", 4, MergerStatus.INVALID_FORMAT, None),
        ("<think>x</think><answer>A</answer><answer>B</answer>", 4, MergerStatus.INVALID_FORMAT, None),
        ("```\n" + MERGED + "\n```", 4, MergerStatus.INVALID_FORMAT, None),
    ],
)
def test_check_merger_output(output, n_options, status, letter):
    check = check_merger_output(output, n_options)
    assert (check.status, check.letter, check.ok) == (status, letter, status is MergerStatus.OK)


def test_merger_check_returns_the_merged_reasoning():
    assert check_merger_output(MERGED, 4).think.startswith("The audio has a driving electronic beat")
    assert check_merger_output("no tags at all", 4).think is None


@pytest.mark.parametrize(
    ("reply", "accepted", "verdict"),
    [
        ("yes", True, "yes"),
        ("Yes.", True, "yes"),
        ("**Yes**, every sound claim holds.", True, "yes"),
        ("Answer: yes", True, "yes"),
        ("<think>The horn is audible.</think>Yes", True, "yes"),
        ("No", False, "no"),
        ("no, there is no horn in the audio", False, "no"),
        ("The claims mostly hold, yes.", False, None),  # a verdict must come first
        ("Yesterday's recording...", False, None),
        ("<think>I hear a horn, so yes", False, None),  # cut off while thinking
        ("", False, None),
    ],
)
def test_fact_check_verdict(reply, accepted, verdict):
    result = parse_fact_check_verdict(reply)
    assert (result.accepted, result.verdict) == (accepted, verdict)


@pytest.mark.parametrize(("output", "n_options", "status"), [
    ("<think>weighing both</think><answer>E</answer>", 4, MergerStatus.OUT_OF_RANGE),
    ("<think>weighing both</think><answer>a dog</answer>", 4, MergerStatus.INVALID_ANSWER),
])
def test_merger_check_keeps_the_reasoning_of_a_rejected_answer(output, n_options, status):
    check = check_merger_output(output, n_options)
    assert (check.status, check.letter, check.think, check.ok) == (status, None, "weighing both", False)


@pytest.mark.parametrize(("output", "said"), [
    ("<think>The horn is audible.</think>\n  Yes, it is. \n", "Yes, it is."),
    ("◁think▷hmm◁/think▷No", "No"),
    ("  plain reply\n", "plain reply"),
    ("<think>still thinking about the horn", ""),
    ("", ""),
])
def test_response_text_is_what_follows_the_thinking(output, said):
    assert response_text(output) == said
