"""The prompt files hold the paper's prompts, and their checked-in hashes catch any change."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from avrt.core.prompts import PROMPTS_DIR, known_prompt_ids, load_prompt

# The paper's text as extracted from arXiv 2604.16617; not part of a user's checkout.
PAPER_TEXT = Path(os.environ.get("AVRT_PAPER_TEXT", "/work/shared/papers/avrt-arxiv-2604.16617.txt"))

PAPER_PROMPTS = {
    "visual_teacher": ("Visual Teacher (Kimi-VL-Thinking) Prompt", "Figure 0.B.1:"),
    "audio_teacher": ("Audio Teacher (Audio Flamingo 3 think) Prompt", "Figure 0.B.2:"),
    "merger": ("Merger (Qwen2.5-14B-Instruct) Prompt", "Figure 0.B.3:"),
    "judge_sources": ("Hallucination Source Analysis Prompt (Gemini-3.1-Flash-Lite)", "Figure 0.A.5:"),
}
# Where the paper's judge prompts take their inputs it writes "[Question, Answer Choices, ... are
# provided]"; the prompt file puts a labelled field for each, in that order, in its place.
PROVIDED = re.compile(r"\[([^\]]+) are provided\] ")


def prompt_from_paper(paper: str, title: str, caption: str) -> str:
    """The figure's prompt under the rules of prompts/README.md."""
    assert paper.count(title) == 1, f"title {title!r} is not unique in the paper text"
    start = paper.index(title) + len(title)
    text = paper[start : paper.index(caption, start)].strip()
    text = text.replace("\u2018\u2018", '"').replace("\u2019\u2019", '"')  # LaTeX ``quotes''
    return re.sub(r"\\n[ \t]*", "\n", text).replace("\u2019", "'")


def provided_fields(listing: str) -> list[str]:
    """"Question, Answer Choices, and Trace A" -> the three names."""
    return [name.strip() for name in re.split(r",\s*(?:and\s+)?|\s+and\s+", listing)]


@pytest.mark.parametrize("prompt_id", sorted(PAPER_PROMPTS))
def test_prompt_file_is_the_papers_text(prompt_id):
    if not PAPER_TEXT.is_file():
        pytest.skip(f"paper text not available at {PAPER_TEXT} (set AVRT_PAPER_TEXT)")
    title, caption = PAPER_PROMPTS[prompt_id]
    expected = prompt_from_paper(PAPER_TEXT.read_text(encoding="utf-8"), title, caption)
    prompt = load_prompt(prompt_id)
    provided = PROVIDED.search(expected)
    if provided is None:
        assert prompt.text == expected
        return
    # verbatim around the inputs, which are labelled fields named as the paper lists them
    before, after = expected[: provided.start()], expected[provided.end() :]
    assert prompt.text.startswith(before) and prompt.text.endswith(after)
    fields = prompt.text[len(before) : len(prompt.text) - len(after)]
    assert re.findall(r"^([A-Z][\w' -]*):", fields, re.M) == provided_fields(provided.group(1))
    assert set(re.findall(r"\{(\w+)\}", fields)) == prompt.placeholders


def test_the_adapted_judge_prompt_keeps_the_head_to_head_prompts_criteria():
    """The paper prints only its head-to-head judge prompt (Fig. 0.A.4); `judge_trace` is its wording
    for one trace: the same criteria, verbatim, and the verdicts of Sec. 0.A.1."""
    if not PAPER_TEXT.is_file():
        pytest.skip(f"paper text not available at {PAPER_TEXT} (set AVRT_PAPER_TEXT)")
    head_to_head = prompt_from_paper(PAPER_TEXT.read_text(encoding="utf-8"),
                                     "Head-to-Head Trace Comparison Prompt (Gemini-3.1-Flash-Lite)", "Figure 0.A.4:")
    criteria = head_to_head[head_to_head.index("Factual Accuracy") : head_to_head.index("[")].strip()
    text = load_prompt("judge_trace").text
    assert criteria in text and text.startswith("You are an expert judge")
    assert '"verdict" (ACCURATE / MISSING_INFO / HALLUCINATING)' in text
    assert '"audio_grounded" (boolean), "visual_grounded" (boolean)' in text


def test_paper_extraction_turns_markers_into_newlines():
    paper = "Intro. My Prompt Say it:\\n Answer: (D) x\\n(E) you\u2019re\nFigure 0.B.9: caption"
    assert prompt_from_paper(paper, "My Prompt", "Figure 0.B.9:") == "Say it:\nAnswer: (D) x\n(E) you're"
    quoted = "My Prompt fields: \u2018\u2018winner\u2019\u2019 (\u2018\u2018A\u2019\u2019), judge\u2019s\nFigure 0.A.4:"
    assert prompt_from_paper(quoted, "My Prompt", "Figure 0.A.4:") == 'fields: "winner" ("A"), judge\'s'
    assert provided_fields("Question, Answer Choices, and Trace B") == ["Question", "Answer Choices", "Trace B"]


def read_sums() -> dict[str, str]:
    sums = {}
    for line in (PROMPTS_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    return sums


def test_every_prompt_file_has_a_checked_in_hash():
    assert sorted(read_sums()) == sorted(f"{pid}.txt" for pid in known_prompt_ids())


@pytest.mark.parametrize("prompt_id", known_prompt_ids())
def test_prompt_file_matches_its_checked_in_hash(prompt_id):
    prompt = load_prompt(prompt_id)
    assert prompt.sha256 == hashlib.sha256(prompt.path.read_bytes()).hexdigest()
    assert prompt.sha256 == read_sums()[f"{prompt_id}.txt"], (
        f"{prompt.path} changed; if on purpose, update SHA256SUMS (old traces keep the old hash)"
    )


def test_readme_documents_every_prompt():
    readme = (PROMPTS_DIR / "README.md").read_text(encoding="utf-8")
    for prompt_id in known_prompt_ids():
        assert f"`{prompt_id}`" in readme, f"{prompt_id} is missing from prompts/README.md"


def test_paper_prompts_are_present_without_the_paper():
    assert set(PAPER_PROMPTS) <= set(known_prompt_ids())
