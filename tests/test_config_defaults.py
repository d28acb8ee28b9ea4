"""Defaults live in the config schema only: dataclasses that mirror a schema section must agree with it.

`MediaParams` mirrors `media` (and, for the fields only evaluation protocols set,
`$defs/media_protocol`), `ModelSpec` mirrors `$defs/model_spec` and `SamplingParams` mirrors
`$defs/sampling`. Each field default is compared with the schema default of the key of the same
name, and the fields must be exactly the section's keys (plus `ModelSpec.name`, the key the spec
is listed under), so a default that drifts, or a key added on one side only, fails here.
"""

from __future__ import annotations

import dataclasses

import pytest

from avrt.core.config import load_schema, stage_config, validate_config
from avrt.core.media import MediaParams
from avrt.models.spec import ModelSpec, SamplingParams


def defs_defaults(name: str, required: dict | None = None) -> dict:
    """The schema's `$defs/<name>` filled in from its defaults (`required` gives keys without one)."""
    schema = load_schema()
    return validate_config(dict(required or {}), schema={"$defs": schema["$defs"], **schema["$defs"][name]})


def field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def drift(cls, defaults: dict, extra_fields: frozenset[str] = frozenset(),
          convert: dict | None = None) -> list[str]:
    """How the field defaults of dataclass `cls` differ from the schema `defaults` of its section.

    `convert[key]` turns a schema value into the field's type (a nested section's dataclass).
    Fields without a default must be keys the schema requires (absent from `defaults`) or `extra_fields`.
    """
    convert = convert or {}
    problems = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, f in fields.items():
        value = field_default(f)
        if name in extra_fields:
            continue
        if name not in defaults:
            if value is not dataclasses.MISSING:
                problems.append(f"{cls.__name__}.{name} has the default {value!r}, the schema none")
            continue
        expected = convert.get(name, lambda v: v)(defaults[name])
        if value is dataclasses.MISSING:
            problems.append(f"{cls.__name__}.{name} has no default, the schema {expected!r}")
        elif value != expected or type(value) is not type(expected) and not _same_number(value, expected):
            problems.append(f"{cls.__name__}.{name} defaults to {value!r}, the schema to {expected!r}")
    for key in sorted(set(defaults) - set(fields)):
        problems.append(f"schema key {key!r} has no field in {cls.__name__}")
    return problems


def _same_number(a, b) -> bool:
    numbers = (int, float)
    return isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool)


def test_media_params_defaults_are_the_schemas():
    protocol_only = {k: v for k, v in defs_defaults("media_protocol").items() if k not in stage_config("media", {})}
    assert set(protocol_only) == {"fps", "max_frames", "audio_length"}
    assert drift(MediaParams, {**stage_config("media", {}), **protocol_only}) == []
    assert MediaParams() == MediaParams.from_config(stage_config("media", {}))


def test_sampling_params_defaults_are_the_schemas():
    assert drift(SamplingParams, defs_defaults("sampling")) == []
    assert SamplingParams() == SamplingParams.from_config(defs_defaults("sampling"))


def test_model_spec_defaults_are_the_schemas():
    required = {"family": "text_llm", "checkpoint": "some/checkpoint"}
    filled = defs_defaults("model_spec", required)
    defaults = {k: v for k, v in filled.items() if k not in required}
    assert drift(ModelSpec, defaults, extra_fields=frozenset({"name"}) | set(required),
                 convert={"sampling": SamplingParams.from_config}) == []
    assert ModelSpec(name="m", **required) == ModelSpec.from_config("m", required)


def test_a_drifted_default_or_a_missing_key_is_reported():
    @dataclasses.dataclass(frozen=True)
    class Drifted:
        num_frames: int = 8
        jpeg_quality: int = 90  # the schema says 95
        frame_max_side: float = 640.0  # a number of the wrong kind is still the same value
        extra: str = "x"  # no such key in `media`

    problems = drift(Drifted, stage_config("media", {}))
    assert "Drifted.jpeg_quality defaults to 90, the schema to 95" in problems
    assert "Drifted.extra has the default 'x', the schema none" in problems
    assert "schema key 'sample_rate' has no field in Drifted" in problems
    assert not any("frame_max_side" in p or "num_frames" in p for p in problems)


@pytest.mark.parametrize("module, command", [
    ("avrt.data.ingest", "ingest"), ("avrt.data.media", "media"), ("avrt.demo.synthetic_avqa", "synth"),
    ("avrt.training.sft", "sft"), ("avrt.training.grpo", "grpo"), ("avrt.provenance", "run-manifest"),
])
def test_config_driven_commands_read_a_config_file(module, command):
    """These commands take their settings from `--config` files, never from JSON on the command line."""
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog=f"avrt {command}")
    importlib.import_module(module).add_arguments(parser)
    config = next(a for a in parser._actions if "--config" in a.option_strings)
    assert config.required and config.nargs == "+"
    # no option repeats a schema default: the only defaults left are per-job ones
    defaults = {a.dest: a.default for a in parser._actions if a.default not in (None, [], False, argparse.SUPPRESS)}
    assert set(defaults) <= {"workers"}, defaults


def test_rewards_take_their_defaults_from_the_schema():
    from avrt.training.rewards import build_rewards, grpo_default, length_reward

    schema = stage_config("grpo", {})
    assert grpo_default("length_reward") == schema["length_reward"]
    outputs = ["<think>" + " ".join(["w"] * n) + "</think><answer>B</answer>" for n in (80, 100, 150, 250)]
    configured = {k: v for k, v in schema.items() if k in ("rewards", "length_reward")}
    assert length_reward()(outputs) == build_rewards(configured)["length"](outputs)
    assert build_rewards({"rewards": ["accuracy"]})["accuracy"](outputs, answer=["B"] * 4) == [1.0] * 4
