"""Reading the chosen option out of teacher outputs written the way real models write them."""

from __future__ import annotations

import json

import pytest

from avrt.core.parsing import ParseStatus, parse_teacher_answer

OPTIONS = [
    "Crime thriller scene", "Documentary narration", "Romantic comedy scene", "Action movie or racing scene",
]
ANIMALS = ["cat", "horse", "dog barking", "bird"]

KIMI = (
    "◁think▷The frames show cars speeding through streets at night. Could it be a documentary? "
    "No narration is visible. The answer is probably D.◁/think▷"
    "Visual Description: Across the eight frames, two cars race through a city at night.\n"
    "Reasoning: The sustained high-speed motion points to an action or racing scene.\n"
    "Answer: (D) Action movie or racing scene"
)
AF3_THINK = (
    "The audio features a high-energy electronic track with a driving beat and rap vocals. "
    "(A) Crime thrillers use darker music; (B) documentaries use neutral music; "
    "(C) romantic comedies use lighter music. Therefore, the most suitable choice is "
    "(D) Action movie or racing scene."
)

# (output, options, expected letter, expected status)
CASES = [
    (KIMI, OPTIONS, "D", ParseStatus.OK),
    (AF3_THINK, OPTIONS, "D", ParseStatus.OK),
    ("Answer: D", OPTIONS, "D", ParseStatus.OK),
    ("**Answer:** (D)", OPTIONS, "D", ParseStatus.OK),
    ("**Answer: (B) Documentary narration**", OPTIONS, "B", ParseStatus.OK),
    ("Reasoning: calm voice-over.\nFinal Answer: C", OPTIONS, "C", ParseStatus.OK),
    ("The answer is (B).", OPTIONS, "B", ParseStatus.OK),
    ("answer: b) documentary narration", OPTIONS, "B", ParseStatus.OK),
    ("Answer:\n(B) Documentary narration", OPTIONS, "B", ParseStatus.OK),
    ("Cars race past. Answer: (D) Action movie", OPTIONS, "D", ParseStatus.OK),
    ("Answer: \\boxed{C}", OPTIONS, "C", ParseStatus.OK),
    ("Answer: Option A", OPTIONS, "A", ParseStatus.OK),
    ("The answer is not (A). The answer is (D).", OPTIONS, "D", ParseStatus.OK),
    ("Option (A) is incorrect, while (B) is the correct one.", OPTIONS, "B", ParseStatus.OK),
    ("(C) is not correct and option D is correct.", OPTIONS, "D", ParseStatus.OK),
    ("Answer: (C)\nTo restate, Answer: C.", OPTIONS, "C", ParseStatus.OK),
    ("<think>Engine sounds.</think>\n<answer>D</answer>", OPTIONS, "D", ParseStatus.OK),
    ("Loud engines and screeching tyres.\n(D) Action movie or racing scene", OPTIONS, "D", ParseStatus.OK),
    ("Loud engines and screeching tyres.\nD", OPTIONS, "D", ParseStatus.OK),
    ("reasoning started in the prompt</think>\nAnswer: C", OPTIONS, "C", ParseStatus.OK),
    ("Answer: D Action movie or racing scene", OPTIONS, "D", ParseStatus.OK),
    ("Answer: Documentary narration.", OPTIONS, "B", ParseStatus.OK_OPTION_TEXT),
    ("Action movie or racing scene", OPTIONS, "D", ParseStatus.OK_OPTION_TEXT),
    ("The answer is documentary narration.", OPTIONS, "B", ParseStatus.OK_OPTION_TEXT),
    ("Answer: A dog barking", ANIMALS, "C", ParseStatus.OK_OPTION_TEXT),  # "A" is the article here
    ("Answer: A or B", OPTIONS, None, ParseStatus.AMBIGUOUS),
    ("Answer: (A)\nOn reflection:\nAnswer: (C)", OPTIONS, None, ParseStatus.AMBIGUOUS),
    ("Answer: (D) Crime thriller scene", OPTIONS, None, ParseStatus.AMBIGUOUS),
    ("So the answer is (B). Hence the answer is (C).", OPTIONS, None, ParseStatus.AMBIGUOUS),
    ("Answer: dog", ["dog", "cat", "Dog.", "bird"], None, ParseStatus.AMBIGUOUS),
    ("Answer: (E) Silent film", OPTIONS, None, ParseStatus.OUT_OF_RANGE),
    ("The answer is F.", OPTIONS, None, ParseStatus.OUT_OF_RANGE),
    ("Answer: a loud explosion", OPTIONS, None, ParseStatus.UNMATCHED_TEXT),
    ("Answer: it could be either", OPTIONS, None, ParseStatus.UNMATCHED_TEXT),
    ("◁think▷The frames show cars, so the answer is D and", OPTIONS, None, ParseStatus.UNCLOSED_THINK),
    ("<think>Maybe (B)? Let me look again at frame 3", OPTIONS, None, ParseStatus.UNCLOSED_THINK),
    ("I cannot determine this from the frames.", OPTIONS, None, ParseStatus.NO_ANSWER),
    ("<think>It is D.</think>", OPTIONS, None, ParseStatus.NO_ANSWER),  # stated only while thinking
    ("(A) Crime thrillers are dark.\n(D) Racing scenes fit best.", OPTIONS, None, ParseStatus.NO_ANSWER),
    ("", OPTIONS, None, ParseStatus.NO_ANSWER),
]


@pytest.mark.parametrize(("output", "options", "letter", "status"), CASES)
def test_parse_teacher_answer(output, options, letter, status):
    parsed = parse_teacher_answer(output, options)
    assert (parsed.letter, parsed.status) == (letter, status)
    assert parsed.ok == (letter is not None)


def test_kimi_output_splits_thinking_reasoning_and_answer():
    parsed = parse_teacher_answer(KIMI, OPTIONS)
    assert parsed.thinking.startswith("The frames show cars") and parsed.thinking.endswith("probably D.")
    assert parsed.reasoning == (
        "Visual Description: Across the eight frames, two cars race through a city at night.\n"
        "Reasoning: The sustained high-speed motion points to an action or racing scene."
    )
    assert parsed.reasoning_source == "response"
    assert parsed.matched == "Answer: (D) Action movie or racing scene"
    assert KIMI[parsed.span[0] : parsed.span[1]] == parsed.matched
    assert parsed.index == 3


def test_answer_phrase_inside_prose_stays_in_the_reasoning():
    parsed = parse_teacher_answer(AF3_THINK, OPTIONS)
    assert parsed.reasoning == AF3_THINK
    assert parsed.matched == "choice is (D) Action movie or racing scene"
    assert parsed.thinking is None


def test_answer_after_a_sentence_leaves_the_sentence():
    parsed = parse_teacher_answer("Cars race past. Answer: (D) Action movie", OPTIONS)
    assert parsed.reasoning == "Cars race past."


def test_reasoning_falls_back_to_thinking_when_the_response_is_only_the_answer():
    parsed = parse_teacher_answer("<think>Engines roar across all frames.</think>\n\nAnswer: (D)", OPTIONS)
    assert parsed.letter == "D"
    assert (parsed.reasoning, parsed.reasoning_source) == ("Engines roar across all frames.", "thinking")


def test_unparsed_output_keeps_its_text_for_the_attrition_table():
    parsed = parse_teacher_answer("Answer: a loud explosion", OPTIONS)
    assert parsed.matched == "Answer: a loud explosion" and parsed.letter is None
    unclosed = parse_teacher_answer("<think>Maybe (B)? Let me look again", OPTIONS)
    assert unclosed.span is None and unclosed.reasoning_source == "thinking"


def test_result_serialises_to_a_json_row():
    parsed = parse_teacher_answer(KIMI, OPTIONS)
    row = json.loads(json.dumps(parsed.to_dict()))
    assert (row["status"], row["letter"], row["span"]) == ("ok", "D", list(parsed.span))
