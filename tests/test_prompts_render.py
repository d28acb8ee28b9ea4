"""Rendering prompts for a sample: the paper's option layout, and no ground truth for the merger."""

from __future__ import annotations

import inspect
import re

import pytest

from avrt.core.prompts import (
    MERGER_FIELDS,
    UnknownPromptError,
    format_choices,
    known_prompt_ids,
    load_prompt,
    question_block,
    render_fact_check_prompt,
    render_merger_prompt,
    render_teacher_prompt,
)

CHOICES = [
    "Crime thriller scene", "Documentary narration", "Romantic comedy scene", "Action movie or racing scene",
]
QUESTION = "What type of activity is happening in this video?"

# The examples inside the two AVRT teacher prompts (Figs. 0.B.1 and 0.B.2).
PAPER_EXAMPLES = {
    "visual_teacher": (QUESTION, CHOICES),
    "audio_teacher": (
        "What type of soundtrack would this piece be most suitable for?",
        ["Crime thriller movie", "Documentary narration", "Romantic comedy movie",
         "Futuristic movie or car racing video game"],
    ),
}


def test_format_choices_layout():
    assert format_choices(["dog", " cat "]) == " Choose one among the following options:(A) dog\n(B) cat\n"


@pytest.mark.parametrize("prompt_id", sorted(PAPER_EXAMPLES))
def test_question_block_reproduces_the_papers_example(prompt_id):
    question, choices = PAPER_EXAMPLES[prompt_id]
    text = load_prompt(prompt_id).text
    start = text.index("Input Question: ") + len("Input Question: ")
    example = text[start : text.index("Expected response format:")]
    # The one documented difference: the paper's example has a space, not a newline, after (A).
    assert example.count(f"{choices[0]} (B)") == 1
    assert question_block(question, choices) == example.replace(f"{choices[0]} (B)", f"{choices[0]}\n(B)")


@pytest.mark.parametrize("prompt_id", sorted(PAPER_EXAMPLES))
def test_avrt_teacher_prompt_gets_the_question_appended(prompt_id):
    prompt = load_prompt(prompt_id)
    rendered = render_teacher_prompt(prompt, question=f"  {QUESTION} ", choices=CHOICES)
    assert rendered == f"{prompt.text} {QUESTION} Choose one among the following options:" + "".join(
        f"({letter}) {choice}\n" for letter, choice in zip("ABCD", CHOICES)
    )
    assert "Here is the input question: What type of activity" in rendered


def test_sightsound_teacher_prompt_fills_its_fields():
    rendered = render_teacher_prompt(load_prompt("sightsound_teacher"), question=QUESTION, choices=CHOICES)
    assert f"Question: {QUESTION} Choose one among the following options:(A) {CHOICES[0]}\n(B)" in rendered
    assert not re.search(r"\{[a-z_]+\}", rendered)


def test_fact_check_prompt_carries_the_trace():
    trace = "The engine roars, then a horn sounds twice."
    prompt = load_prompt("sightsound_agfv")
    rendered = render_fact_check_prompt(prompt, question=QUESTION, choices=CHOICES, reasoning=trace)
    assert f"Reasoning trace:\n{trace}\n" in rendered
    assert "(D) Action movie or racing scene\n" in rendered


def test_fields_are_filled_in_one_pass():
    rendered = render_merger_prompt(
        load_prompt("merger"),
        question="Which {formatted_choices} is it?",
        choices=CHOICES,
        audio_reasoning="I hear {vision_reasoning} and {question}.",
        vision_reasoning="I see cars.",
    )
    assert "Question: Which {formatted_choices} is it? Choose one" in rendered
    assert "Audio Analysis: I hear {vision_reasoning} and {question}. Visual Analysis: I see cars." in rendered


def test_unknown_prompt_id_names_the_known_ones():
    with pytest.raises(UnknownPromptError) as err:
        load_prompt("visual_teachr")
    for prompt_id in known_prompt_ids():
        assert prompt_id in str(err.value)


def test_prompt_id_cannot_leave_the_prompt_directory(tmp_path):
    (tmp_path / "outside.txt").write_text("x")
    inner = tmp_path / "prompts"
    inner.mkdir()
    with pytest.raises(UnknownPromptError):
        load_prompt("../outside", directory=inner)


def test_template_with_other_fields_is_rejected(tmp_path):
    template = "Q: {question}{formatted_choices} A: {audio_reasoning} V: {vison_reasoning}\n"
    (tmp_path / "merger_typo.txt").write_text(template)
    prompt = load_prompt("merger_typo", directory=tmp_path)
    assert prompt.text.endswith("{vison_reasoning}")  # the final newline is not part of the template
    with pytest.raises(ValueError, match="merger_typo.*vison_reasoning"):
        render_merger_prompt(prompt, question=QUESTION, choices=CHOICES, audio_reasoning="a", vision_reasoning="v")


@pytest.mark.parametrize(
    ("question", "choices"),
    [
        ("", CHOICES),
        (QUESTION, []),
        (QUESTION, ["dog", " "]),
        (QUESTION, "ABCD"),  # a string, not a list of options
        (QUESTION, [str(i) for i in range(27)]),
    ],
)
def test_bad_question_or_options_are_rejected(question, choices):
    with pytest.raises(ValueError):
        question_block(question, choices)


# --- the merger never sees the ground truth -------------------------------------------------

GOLD = "GOLD-MARKER-7f3a9c"


def sample_with_gold(gold_index: int) -> dict:
    """A manifest-like row whose gold fields carry a marker found nowhere else."""
    return {
        "question": QUESTION,
        "choices": CHOICES,
        "answer": f"{GOLD} {CHOICES[gold_index]}",
        "answer_index": 90000 + gold_index,
        "answer_letter": f"{GOLD}-{'ABCD'[gold_index]}",
        "gold": GOLD,
    }


def render_merger_from_sample(sample: dict) -> str:
    """Pass every sample field the renderer accepts, as a merger stage would."""
    accepted = set(inspect.signature(render_merger_prompt).parameters)
    fields = {key: value for key, value in sample.items() if key in accepted}
    return render_merger_prompt(
        load_prompt("merger"), **fields, audio_reasoning="Engine noise.", vision_reasoning="Cars racing."
    )


def test_merger_renderer_accepts_no_answer_parameter():
    params = inspect.signature(render_merger_prompt).parameters
    assert set(params) == {"prompt", "question", "choices", "audio_reasoning", "vision_reasoning"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in params.items() if name != "prompt")
    assert load_prompt("merger").placeholders == MERGER_FIELDS


@pytest.mark.parametrize("gold_field", ["answer", "answer_index", "answer_letter", "gold"])
def test_merger_renderer_rejects_gold_fields(gold_field):
    with pytest.raises(TypeError):
        render_merger_prompt(
            load_prompt("merger"),
            question=QUESTION,
            choices=CHOICES,
            audio_reasoning="a",
            vision_reasoning="v",
            **{gold_field: sample_with_gold(3)[gold_field]},
        )


def test_gold_marker_never_reaches_the_merger_prompt():
    rendered = [render_merger_from_sample(sample_with_gold(i)) for i in range(len(CHOICES))]
    for text in rendered:
        assert GOLD not in text and "9000" not in text
    # The prompt is the same whichever option is correct.
    assert len(set(rendered)) == 1
