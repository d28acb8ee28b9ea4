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
}


def prompt_from_paper(paper: str, title: str, caption: str) -> str:
    """The figure's prompt under the rules of prompts/README.md."""
    assert paper.count(title) == 1, f"title {title!r} is not unique in the paper text"
    start = paper.index(title) + len(title)
    text = paper[start : paper.index(caption, start)].strip()
    return re.sub(r"\\n[ \t]*", "\n", text).replace("\u2019", "'")


@pytest.mark.parametrize("prompt_id", sorted(PAPER_PROMPTS))
def test_prompt_file_is_the_papers_text(prompt_id):
    if not PAPER_TEXT.is_file():
        pytest.skip(f"paper text not available at {PAPER_TEXT} (set AVRT_PAPER_TEXT)")
    title, caption = PAPER_PROMPTS[prompt_id]
    expected = prompt_from_paper(PAPER_TEXT.read_text(encoding="utf-8"), title, caption)
    assert load_prompt(prompt_id).text == expected


def test_paper_extraction_turns_markers_into_newlines():
    paper = "Intro. My Prompt Say it:\\n Answer: (D) x\\n(E) you\u2019re\nFigure 0.B.9: caption"
    assert prompt_from_paper(paper, "My Prompt", "Figure 0.B.9:") == "Say it:\nAnswer: (D) x\n(E) you're"


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
