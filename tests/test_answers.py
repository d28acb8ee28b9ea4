"""The strict output format shared by the merger check, the format reward and evaluation."""

import pytest

from avrt.core.answers import is_strict_format, strict_answer_letter, think_text


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
