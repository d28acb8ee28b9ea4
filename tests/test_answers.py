"""The strict output format shared by the merger check, the format reward and evaluation."""

import pytest

from avrt.core.answers import is_strict_format, option_letter, strict_answer_letter, think_text


@pytest.mark.parametrize(
    "text, ok",
    [
        ("<think>a</think><answer>B</answer>", True),
        ("  <think>a\nb</think>\n<answer> B </answer>\n", True),
        ("<think></think><answer>B</answer>", True),
        ("<answer>B</answer>", False),
        ("<think>a</think>", False),
        ("x <think>a</think><answer>B</answer>", False),
        ("<think>a</think><answer>B</answer> and more", False),
        ("<think>a<think>b</think><answer>B</answer>", False),
        ("<think>a</think><answer>B</answer><answer>C</answer>", False),
        ("<think>a</think> b</think><answer>B</answer>", False),
        ("<think>a</think><answer>B</answer></answer>", False),
        ("<answer>B</answer><think>a</think>", False),
    ],
)
def test_strict_format(text, ok):
    assert is_strict_format(text) is ok
    assert (think_text(text) is not None) is ok


@pytest.mark.parametrize(
    "text, n, letter",
    [
        ("<think>t</think><answer>C</answer>", 4, "C"),
        ("<answer>(C)</answer>", 4, "C"),
        ("<answer>C.</answer>", 4, "C"),
        ("<answer>c</answer>", 4, None),
        ("<answer>E</answer>", 4, None),
        ("<answer>E</answer>", 5, "E"),
        ("<answer>C) red</answer>", 4, None),
        ("<answer>A</answer><answer>B</answer>", 4, None),
        ("no tags: C", 4, None),
    ],
)
def test_strict_answer_letter(text, n, letter):
    assert strict_answer_letter(text, n) == letter


def test_think_text_is_the_reasoning_of_a_strict_output():
    assert think_text("\n<think> look, then listen\n</think> <answer>B</answer>") == " look, then listen\n"
    assert think_text("<think></think><answer>B</answer>") == ""
    assert think_text("<think>a</think>") is None


def test_strict_answer_letter_without_a_bound_takes_any_capital_letter():
    assert strict_answer_letter("<answer>Z</answer>") == "Z"
    assert strict_answer_letter("<answer>(A).</answer>") == "A"
    assert strict_answer_letter("<answer>AB</answer>") is None
    assert strict_answer_letter("<answer></answer>") is None
    assert strict_answer_letter("<answer>\n (D) \n</answer>", 4) == "D"
    assert strict_answer_letter("<answer>A</answer>", 0) is None


def test_option_letters_follow_the_choice_order():
    assert [option_letter(i) for i in range(4)] == ["A", "B", "C", "D"]
    assert option_letter(25) == "Z"
