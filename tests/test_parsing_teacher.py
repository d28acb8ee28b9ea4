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
    # an answer phrase at the very end, after earlier lines, and one whose next line says something else
    ("The answer is (B)", OPTIONS, "B", ParseStatus.OK),
    ("Calm voice-over throughout.\nThe answer is (B)", OPTIONS, "B", ParseStatus.OK),
    ("The answer is Documentary narration\nCrime thriller scene was my first thought.\nDone", OPTIONS, "B",
     ParseStatus.OK_OPTION_TEXT),
    # the last line: trailing blank lines, three lines, a letter with its bracket or full stop
    ("Loud engines and screeching tyres.\nD\n\n", OPTIONS, "D", ParseStatus.OK),
    ("Loud engines.\nScreeching tyres.\n(D)", OPTIONS, "D", ParseStatus.OK),
    ("Loud engines and screeching tyres.\nD)", OPTIONS, "D", ParseStatus.OK),
    ("Loud engines and screeching tyres.\nD.", OPTIONS, "D", ParseStatus.OK),
    ("Mallets on wooden bars.\n(A) Xylophone solo", ["Xylophone solo", "Drums", "Guitar", "Violin"], "A",
     ParseStatus.OK),
    ("Loud engines and screeching tyres.\nOption D", OPTIONS, None, ParseStatus.NO_ANSWER),  # no cue, not bare
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


def test_result_row_has_every_field():
    row = parse_teacher_answer("Engines roar.\nAnswer: (D)", OPTIONS).to_dict()
    assert row == {"status": "ok", "letter": "D", "reasoning": "Engines roar.", "reasoning_source": "response",
                   "thinking": None, "span": [14, 25], "matched": "Answer: (D)"}
    assert type(row["status"]) is str
    none = parse_teacher_answer("I cannot tell.", OPTIONS).to_dict()
    assert (none["status"], none["span"], none["matched"]) == ("no_answer", None, None)


def test_a_verdict_phrase_stays_in_the_reasoning():
    text = "Engines roar over a driving beat. (D) is correct."
    parsed = parse_teacher_answer(text, OPTIONS)
    assert (parsed.letter, parsed.reasoning, parsed.matched) == ("D", text, "(D) is correct")


def test_the_deciding_statement_is_the_one_that_named_the_option():
    text = "The answer is Documentary narration\nCrime thriller scene was my first thought."
    assert parse_teacher_answer(text, OPTIONS).matched == "answer is Documentary narration"
    final = parse_teacher_answer("Loud engines.\n  (D) Action movie or racing scene  \n", OPTIONS)
    assert final.matched == "(D) Action movie or racing scene"
    assert final.reasoning == "Loud engines."


def test_a_cue_that_names_no_option_leaves_the_last_line_to_decide():
    parsed = parse_teacher_answer("The answer is hard to hear over the music.\nD", OPTIONS)
    assert (parsed.letter, parsed.status, parsed.matched) == ("D", ParseStatus.OK, "D")


def test_thinking_is_kept_whatever_the_status():
    unmatched = parse_teacher_answer("<think>Engines.</think>Answer: a loud explosion", OPTIONS)
    assert (unmatched.status, unmatched.thinking) == (ParseStatus.UNMATCHED_TEXT, "Engines.")
    stated_only_while_thinking = parse_teacher_answer("<think>It is D.</think>", OPTIONS)
    assert (stated_only_while_thinking.thinking, stated_only_while_thinking.reasoning) == ("It is D.", "It is D.")
    nested = parse_teacher_answer("<think>first pass</think> second pass</think>Answer: C", OPTIONS)
    assert (nested.letter, nested.thinking) == ("C", "first pass second pass")


def test_an_answer_alone_without_thinking_has_no_reasoning():
    parsed = parse_teacher_answer("Answer: (D)", OPTIONS)
    assert (parsed.reasoning, parsed.reasoning_source, parsed.thinking) == ("", "none", None)


def test_an_answer_on_the_line_after_its_cue_is_one_statement():
    parsed = parse_teacher_answer("Calm voice-over.\nAnswer:\n(B) Documentary narration\nThat is all.", OPTIONS)
    assert parsed.letter == "B" and parsed.matched == "Answer:\n(B) Documentary narration"
    assert parsed.reasoning == "Calm voice-over.\nThat is all."


def test_an_answer_tag_may_hold_the_option_text():
    parsed = parse_teacher_answer("<answer>Documentary narration</answer>", OPTIONS)
    assert (parsed.letter, parsed.status) == ("B", ParseStatus.OK_OPTION_TEXT)


@pytest.mark.parametrize(("output", "reasoning"), [
    ("Line one.\nLine two.\nAnswer: (D)\nLine four.", "Line one.\nLine two.\nLine four."),
    ("Engines.\nAnswer: (C)\nAnswer: C", "Engines."),
    ("Answer: (D)\nLine two.\nLine three.", "Line two.\nLine three."),
    ("Engines.\nAnswer: (D)\n\nLine four.", "Engines.\n\nLine four."),
    ("Answer: <answer>D</answer>\nEngines.\nAnswer: D", "Engines."),
    ("Engines roar.\n<answer>D</answer>.", "Engines roar."),
    ("Engines roar. Answer: (D)\nA chase follows.", "Engines roar. \nA chase follows."),
])
def test_answer_lines_leave_the_reasoning_around_them(output, reasoning):
    parsed = parse_teacher_answer(output, OPTIONS)
    assert parsed.ok and parsed.reasoning == reasoning
