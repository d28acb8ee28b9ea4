"""The tiny model zoo: reproducible offline builds that load like real checkpoints."""

from __future__ import annotations

import hashlib
import json

import pytest
from models_fixtures import tiny_zoo  # noqa: F401  (fixture)
from transformers import AutoConfig, AutoProcessor

from avrt.cli import main
from avrt.models.adapters import GenerationRequest, get_adapter
from avrt.models.spec import ModelSpec
from avrt.demo.zoo import FAMILIES, build_zoo


def tree_digest(root):
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_same_seed_builds_identical_files_and_another_seed_other_weights(tmp_path):
    families = ["qwen2_5_omni", "audio_flamingo3"]
    first = build_zoo(tmp_path / "a", families, seed=0)
    build_zoo(tmp_path / "b", families, seed=0)
    build_zoo(tmp_path / "c", families, seed=1)
    a, b, c = (tree_digest(tmp_path / name) for name in "abc")
    a.pop("zoo.json"), b.pop("zoo.json"), c.pop("zoo.json")  # they name their own directories
    assert a == b
    assert a["qwen2_5_omni/model.safetensors"] != c["qwen2_5_omni/model.safetensors"]
    assert a["qwen2_5_omni/tokenizer.json"] == c["qwen2_5_omni/tokenizer.json"]
    assert set(first["families"]) == set(families)


def test_manifest_lists_each_checkpoint_and_the_think_adapter(tiny_zoo):  # noqa: F811
    manifest = json.loads((tiny_zoo / "zoo.json").read_text())
    assert list(manifest["families"]) == list(FAMILIES)
    for family, entry in manifest["families"].items():
        assert (tiny_zoo / family / "config.json").is_file() and entry["checkpoint"].endswith(family)
        assert 10_000 < entry["parameters"] < 1_000_000
    af3 = manifest["families"]["audio_flamingo3"]
    adapter_config = tiny_zoo / "audio_flamingo3" / af3["adapter_subfolder"] / "adapter_config.json"
    assert json.loads(adapter_config.read_text())["r"] == 8


def test_omni_is_saved_like_the_hub_checkpoint_without_its_speech_head(tiny_zoo):  # noqa: F811
    config = AutoConfig.from_pretrained(tiny_zoo / "qwen2_5_omni")
    assert config.model_type == "qwen2_5_omni" and config.enable_audio_output is False


@pytest.mark.parametrize("family", ["qwen2_5_omni", "qwen2_5_vl", "qwen2_audio", "audio_flamingo3", "text_llm"])
def test_tiny_processors_carry_the_template_the_adapters_render_with(tiny_zoo, family):  # noqa: F811
    processor = AutoProcessor.from_pretrained(tiny_zoo / family)
    adapter = get_adapter(family)
    spec = ModelSpec.from_config(family, {"family": family, "checkpoint": str(tiny_zoo / family)})
    prepared = adapter.prepare(GenerationRequest("q", "Q?"), spec, processor.chat_template)
    messages = adapter.messages("Q?", prepared.media, spec)
    assert processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == prepared.text
    assert adapter.template_mismatch(processor.chat_template) is None


def test_cli_builds_the_requested_families(tmp_path, capsys):
    assert main(["zoo", "--out", str(tmp_path / "zoo"), "--families", "text_llm"]) == 0
    manifest = json.loads((tmp_path / "zoo" / "zoo.json").read_text())
    assert list(manifest["families"]) == ["text_llm"]
    assert not any(p.name.startswith(".build-") for p in (tmp_path / "zoo").iterdir())


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match=r"no tiny model for families \['kimi_vl'\]"):
        build_zoo("unused", ["kimi_vl"])
