"""The official answer rules, checked against worked examples derived by hand from each
benchmark's script (see avrt/evaluation/official_rules.py for the sources)."""

from __future__ import annotations

import pytest

from avrt.evaluation.official_rules import (
    dailyomni_letter,
    judge_music_avqa,
    judge_omnibench,
    judge_string_match,
    mmmu_choice,
    string_match,
    videomme_letter,
)
from avrt.evaluation.records import BenchmarkRecord


def mcq(options, gold_letter, benchmark="omnibench") -> BenchmarkRecord:
    options = tuple(options)
    return BenchmarkRecord(
        id="x", benchmark=benchmark, question="q", options=options,
        gold_letter=gold_letter, gold_text=options[ord(gold_letter) - ord("A")],
    )


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("B", "B"),
        ("  c) because of the drums", "C"),  # case-insensitive, leading spaces allowed
        ("system\nuser\nassistant\nD", "D"),  # the text after "assistant" is read
        ("A dog barks, so the answer is C", "A"),  # only the start counts: "A" of "A dog"
        ("The answer is B", None),  # starts with "T"
        ("<think>the drums</think><answer>B</answer>", None),  # starts with "<"
        ("assistant: B", None),  # after "assistant" comes ":"
        ("", None),
    ],
)
def test_dailyomni_letter_at_the_start(output, expected):
    assert dailyomni_letter(output) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("The best answer is C.", "C"),
        ("C", "C"),
        ("(D) The runners start.", "D"),
        ("I think it is B", "B"),  # "I" is not A-D
        ("A man speaks first, so the answer is C", "A"),  # the first capital A-D anywhere
        ("Best answer: C", "B"),  # official quirk: "Best answer:" is never stripped (missing comma)
        ("The best option is D", "D"),  # not stripped either, but holds no capital A-D
        ("the answer is c", None),  # lower case never matches
        ("none of the options fit the clip at all in my honest opinion here", None),
    ],
)
def test_videomme_first_capital_letter_after_prefix_stripping(output, expected):
    assert videomme_letter(output) == expected


OMNI = {
    "A": "The man is reading.",
    "B": "The man is cooking dinner.",
    "C": "The man is singing.",
    "D": "The man is asleep.",
}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("(B)", "B"),
        ("(A) is wrong; (C) is right", "C"),  # several bracketed letters: the last one wins
        ("The answer is B because of the pans", "B"),  # "B " (letter then space)
        ("B.", "B"),  # no "B " in " B. ", so the third step ("B.") finds it
        ("A cat meows, then D", "D"),  # "A " and "D " both match; " D " is found last
        ("I am confident: the man is cooking dinner.", "B"),  # > 5 words: option text
        ("the man is cooking dinner", None),  # 5 words: too short for the text step
        ("no idea", None),  # N/A
    ],
)
def test_omnibench_mmmu_parsing_steps(response, expected):
    assert mmmu_choice(response, OMNI) == expected


def test_omnibench_official_gold_is_parsed_from_the_answer_text():
    # The gold answer is option C, but its text starts with "A ": the official parser reads gold "A".
    record = mcq(["The driver asks", "A child reads", "A conductor is announcing the next station", "Nobody"], "C")
    honest = judge_omnibench("(C)", record)
    assert honest.gold == "A" and honest.prediction == "C" and not honest.correct
    assert judge_omnibench("(A)", record).correct
    # A short gold text that the parser cannot read ("N/A") makes every answer wrong.
    short = mcq(["One.", "Two.", "Three.", "Four."], "B")
    assert judge_omnibench("(B)", short).gold == "N/A" and not judge_omnibench("(B)", short).correct


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Open Grassland", True),
        ("open grassland.", True),  # case and punctuation are ignored
        ("It is an open grassland", True),  # extra words shared by no other option are fine
        ("Dense Forest or Open Grassland", False),  # words of another option
        ("Grassland", False),  # not every answer word
        ("C", False),  # a bare letter never matches
        ("", False),
    ],
)
def test_string_match_worked_examples(prediction, expected):
    choices = ["Mountain Canyon", "Dense Forest", "Open Grassland", "City Streets"]
    assert string_match("Open Grassland", prediction, choices) is expected


def test_string_match_ignores_words_shared_with_the_answer():
    # "a" belongs to the answer too, so it is not an incorrect word; "child" is.
    choices = ["A child", "A woman", "An adult man"]
    assert string_match("A woman", "a woman", choices)
    assert not string_match("A woman", "a woman or a child", choices)


def test_string_match_column_maps_letters_to_option_text():
    record = mcq(["Mountain Canyon", "Dense Forest", "Open Grassland", "City Streets"], "C", "mmar")
    tagged = judge_string_match("<think>wide open space</think><answer>C</answer>", record)
    assert tagged.correct and tagged.prediction == "Open Grassland"
    assert judge_string_match("C", record).correct  # a bare letter output is mapped too
    assert not judge_string_match("<answer>B</answer>", record).correct
    # Option text inside the tags: no letter, so the raw output is matched ("answer" is no option word).
    assert judge_string_match("<answer>Open Grassland</answer>", record).correct
    assert not judge_string_match("<answer>E</answer>", record).correct  # beyond the options: raw text


def test_string_match_column_accepts_either_copy_of_a_repeated_gold():
    record = BenchmarkRecord(
        id="r", benchmark="mmau_test_mini", question="q", options=("two", "six", "four", "four"),
        gold_letter="C", gold_text="four",
    )
    assert judge_string_match("<answer>D</answer>", record).correct


def test_music_avqa_mention_rule():
    record = BenchmarkRecord(
        id="m", benchmark="music_avqa", question="q", options=(), gold_letter=None, gold_text="acoustic_guitar"
    )
    assert judge_music_avqa("It is an acoustic guitar.", record).correct
    assert not judge_music_avqa("It is an electric guitar.", record).correct
