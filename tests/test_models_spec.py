"""Model specs built from config entries: defaults, validation, lookup."""

from __future__ import annotations

import pytest

from avrt.core.config import ConfigError, load_config
from avrt.models.spec import ModelSpec, SamplingParams, model_spec


def test_missing_keys_take_the_schema_defaults():
    spec = ModelSpec.from_config("student", {"family": "qwen2_5_omni", "checkpoint": "Qwen/Qwen2.5-Omni-3B"})
    assert (spec.name, spec.backend, spec.dtype, spec.batch_size, spec.trust_remote_code) == (
        "student", "hf", "bfloat16", 4, False)
    assert spec.sampling == SamplingParams(temperature=0.0, top_p=1.0, top_k=-1, max_new_tokens=1024, n=1, seed=0,
                                           repetition_penalty=1.0)
    assert spec.sampling.greedy and spec.processor_source == "Qwen/Qwen2.5-Omni-3B"


def test_given_values_are_kept_and_typed():
    spec = ModelSpec.from_config("teacher", {
        "family": "qwen2_5_vl", "checkpoint": "Qwen/Qwen2.5-VL-32B-Instruct", "processor": "proc/dir",
        "backend": "vllm", "tensor_parallel_size": 2, "limit_mm_per_prompt": {"video": 1},
        "sampling": {"temperature": 1.0, "n": 8, "seed": 3},
    })
    assert spec.tensor_parallel_size == 2 and spec.limit_mm_per_prompt == {"video": 1}
    assert spec.sampling.n == 8 and not spec.sampling.greedy and spec.sampling.max_new_tokens == 1024
    assert spec.processor_source == "proc/dir"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"family": "qwen2_5_omni"}, "'checkpoint' is a required property"),
        ({"family": "whisper", "checkpoint": "x"}, "family"),
        ({"family": "text_llm", "checkpoint": "x", "temprature": 0.1}, "unknown config key 'temprature'"),
        ({"family": "text_llm", "checkpoint": "x", "sampling": {"n": 0}}, "sampling.n"),
        ({"family": "text_llm", "checkpoint": "x", "backend": "tgi"}, "backend"),
    ],
)
def test_bad_entries_are_refused_naming_the_model_and_key(entry, message):
    with pytest.raises(ConfigError, match=message) as err:
        ModelSpec.from_config("merger", entry)
    assert str(err.value).startswith("model 'merger':")


def test_every_model_of_the_paper_recipe_makes_a_spec(repo_root):
    config = load_config(repo_root / "config" / "config.yaml")
    specs = {name: model_spec(config, name) for name in config["models"]}
    assert specs["visual_teacher"].family == "kimi_vl" and specs["visual_teacher"].trust_remote_code
    assert specs["audio_teacher"].adapter_subfolder == "think"
    assert specs["audio_teacher"].prompt_suffix.strip().startswith("Please think and reason")
    assert not specs["student"].trust_remote_code


def test_looking_up_an_undefined_model_lists_the_defined_ones():
    with pytest.raises(ConfigError, match=r"'models.checker' is not defined \(defined: merger\)"):
        model_spec({"models": {"merger": {"family": "text_llm", "checkpoint": "x"}}}, "checker")
