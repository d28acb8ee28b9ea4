"""A checkpoint's own Python code runs only when its spec sets trust_remote_code."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import transformers.dynamic_module_utils as dynamic_modules
from models_fixtures import tiny_zoo  # noqa: F401  (fixture)

from avrt.models.adapters import GenerationRequest
from avrt.models.backends import load_model
from avrt.models.spec import ModelSpec


@pytest.fixture
def planted_checkpoint(tiny_zoo, tmp_path):  # noqa: F811
    """The tiny text model, plus `auto_map` entries pointing at a module that leaves a marker when imported."""
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_zoo / "text_llm", checkpoint)
    marker = tmp_path / "remote_code_ran"
    (checkpoint / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nraise RuntimeError('planted remote code ran')\n"
    )
    for name, auto_map in [
        ("config.json", {"AutoConfig": "planted.Config", "AutoModelForCausalLM": "planted.Model"}),
        ("tokenizer_config.json", {"AutoTokenizer": ["planted.Tokenizer", None]}),
    ]:
        data = json.loads((checkpoint / name).read_text())
        (checkpoint / name).write_text(json.dumps({**data, "auto_map": auto_map}))
    return checkpoint, marker


def set_model_type(checkpoint, model_type):
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "model_type": model_type}))


def text_spec(checkpoint, **extra) -> ModelSpec:
    return ModelSpec.from_config("merger", {"family": "text_llm", "checkpoint": str(checkpoint), "dtype": "float32",
                                            "sampling": {"max_new_tokens": 3}, **extra})


def test_known_architecture_loads_its_own_code_and_ignores_the_checkpoints(planted_checkpoint):
    checkpoint, marker = planted_checkpoint
    backend = load_model(text_spec(checkpoint))
    assert backend.generate([GenerationRequest("q", "Hello")])[0].completion_tokens >= 1
    assert not marker.exists()


def test_unknown_architecture_is_refused_without_running_its_code(planted_checkpoint):
    checkpoint, marker = planted_checkpoint
    set_model_type(checkpoint, "planted_llm")
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        load_model(text_spec(checkpoint))
    assert not marker.exists()


def test_control_trust_remote_code_from_the_spec_does_run_it(planted_checkpoint, tmp_path, monkeypatch):
    """Shows the planted module would be caught: with the spec's consent it is imported."""
    checkpoint, marker = planted_checkpoint
    set_model_type(checkpoint, "planted_llm")
    monkeypatch.setattr(dynamic_modules, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(RuntimeError, match="planted remote code ran"):
        load_model(text_spec(checkpoint, trust_remote_code=True))
    assert marker.exists()
