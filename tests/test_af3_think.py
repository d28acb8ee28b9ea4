"""Audio Flamingo 3's think mode, whole on both backends: its non-LoRA weights and its LoRA.

The tiny zoo's think adapter is laid out as the hub repo's (src/avrt/models/peft_adapter.py lists
the facts): `non_lora_trainables.bin` and a PEFT LoRA, named in the checkpoint's layout
(`language_model.model.*`), which transformers 5 builds as `model.language_model.*`. The
transformers backend applies it whole; for vLLM, `avrt merge-adapter` writes the same merge as a
plain checkpoint, which the workflow makes once and hands to the jobs that load the model.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from models_fixtures import tiny_zoo  # noqa: F401  (fixture)
from safetensors.torch import load_file, save_file
from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor, AutoTokenizer

from avrt.cli import main
from avrt.core.config import load_config, load_yaml
from avrt.core.io import InputFileError
from avrt.models.adapters import GenerationRequest
from avrt.models.backends import load_model
from avrt.models.merged_checkpoint import STAMP, merge_adapter, merged_name, merged_spec
from avrt.models.peft_adapter import NON_LORA_FILE, AdapterError, load_non_lora_weights, merge_lora
from avrt.models.spec import ModelSpec, model_spec
from avrt.models.vllm_backend import VLLMBackend, engine_kwargs
from conftest import REPO, copy_workflow, run_snakemake

# AF3's checkpoint layout -> the modules transformers 5 builds, written out (transformers' own
# conversion_mapping is what the loader uses; this is the test's independent account of it).
CHECKPOINT_TO_MODEL = (("language_model.lm_head.", "lm_head."), ("language_model.model.", "model.language_model."),
                       ("audio_tower.", "model.audio_tower."), ("multi_modal_projector.", "model.multi_modal_projector."))
PROMPT = "<|im_start|>user\nWhat makes the sound? Please think and reason.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models on a shared 2-core machine."""


def af3(folder: Path, **extra) -> ModelSpec:
    return ModelSpec.from_config("audio_teacher", {
        "family": "audio_flamingo3", "checkpoint": str(folder), "adapter": str(folder), "adapter_subfolder": "think",
        "dtype": "float32", "sampling": {"max_new_tokens": 6}, **extra,
    })


def base_model(folder: Path):
    return AudioFlamingo3ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()


def model_name(checkpoint_name: str) -> str:
    for old, new in CHECKPOINT_TO_MODEL:
        if checkpoint_name.startswith(old):
            return new + checkpoint_name[len(old):]
    raise AssertionError(f"{checkpoint_name!r} is not in AF3's checkpoint layout")


@torch.inference_mode()
def logits(model, folder: Path) -> torch.Tensor:
    ids = AutoTokenizer.from_pretrained(folder)(PROMPT, return_tensors="pt", add_special_tokens=False).input_ids
    return model(input_ids=ids).logits[0]


def think_by_hand(folder: Path) -> dict[str, torch.Tensor]:
    """The base model's weights with think mode applied, from the files alone: the non-LoRA tensors
    replace their weights, then each LoRA pair adds alpha/r * B @ A to its layer's weight."""
    state = {k: v.clone() for k, v in base_model(folder).state_dict().items()}
    think = folder / "think"
    for key, tensor in torch.load(think / NON_LORA_FILE, weights_only=True).items():
        state[model_name(key)] = tensor
    config = json.loads((think / "adapter_config.json").read_text())
    lora = load_file(think / "adapter_model.safetensors")
    for key, a in lora.items():
        if key.endswith(".lora_A.weight"):
            b = lora[key.replace(".lora_A.", ".lora_B.")]
            module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            state[f"{model_name(module)}.weight"] += config["lora_alpha"] / config["r"] * b @ a
    return state


@pytest.fixture
def af3_copy(tiny_zoo, tmp_path) -> Path:  # noqa: F811
    """A copy of the tiny AF3 with its think adapter, for tests that change the adapter's files."""
    return Path(shutil.copytree(tiny_zoo / "audio_flamingo3", tmp_path / "audio_flamingo3"))


# ---- the tiny think adapter is laid out as the hub repo's -----------------------------------------
def test_the_tiny_think_adapter_names_its_weights_in_the_checkpoint_layout(tiny_zoo):  # noqa: F811
    think = tiny_zoo / "audio_flamingo3" / "think"
    assert {p.name for p in think.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors", NON_LORA_FILE}
    non_lora = torch.load(think / NON_LORA_FILE, weights_only=True)
    assert sorted(non_lora) == ["language_model.lm_head.weight", "language_model.model.embed_tokens.weight"]
    targets = json.loads((think / "adapter_config.json").read_text())["target_modules"]
    # every linear layer of the LLM's decoder, by full name (AF3's trainer lists them so)
    assert len(targets) == 2 * 7 and all(
        re.fullmatch(r"language_model\.model\.layers\.\d\.(self_attn\.[qkvo]|mlp\.(gate|up|down))_proj", t)
        for t in targets)
    keys = load_file(think / "adapter_model.safetensors")
    assert all(k.startswith("base_model.model.language_model.model.layers.") for k in keys) and len(keys) == 2 * 14


# ---- the transformers backend applies both parts ------------------------------------------------
def test_each_part_of_think_mode_changes_the_model_and_the_backend_applies_both(tiny_zoo):  # noqa: F811
    folder = tiny_zoo / "audio_flamingo3"
    base = base_model(folder)
    lora_only = merge_lora(base_model(folder), folder / "think")
    non_lora_only = base_model(folder)
    loaded = load_non_lora_weights(non_lora_only, folder / "think")
    assert loaded.loaded == ("lm_head.weight", "model.language_model.embed_tokens.weight") and not loaded.unmatched
    full = load_model(af3(folder)).model
    outputs = {name: logits(model, folder)
               for name, model in {"base": base, "lora": lora_only, "non_lora": non_lora_only, "full": full}.items()}
    names = list(outputs)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert not torch.allclose(outputs[first], outputs[second], atol=1e-4), f"{first} == {second}"
    # the backend's model is the one computed by hand from the adapter's files
    expected = think_by_hand(folder)
    state = full.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.allclose(state[k], expected[k], atol=1e-6) for k in expected)


def test_non_lora_keys_with_the_peft_prefix_load_the_same(af3_copy):
    path = af3_copy / "think" / NON_LORA_FILE
    plain = torch.load(path, weights_only=True)
    torch.save({f"base_model.model.{k}": v for k, v in plain.items()}, path)  # as AF3's trainer names them
    model = base_model(af3_copy)
    assert load_non_lora_weights(model, af3_copy / "think").loaded == ("lm_head.weight",
                                                                     "model.language_model.embed_tokens.weight")
    assert model.lm_head.weight.equal(plain["language_model.lm_head.weight"])


def test_non_lora_keys_that_match_nothing_are_an_error_naming_the_file(af3_copy):
    """The model card's load_state_dict(strict=False) would load nothing and say nothing."""
    path = af3_copy / "think" / NON_LORA_FILE
    torch.save({"llm.model.embed_tokens.weight": torch.zeros(1)}, path)  # the original trainer's module names
    with pytest.raises(AdapterError, match=rf"{re.escape(str(path))}: none of its 1 tensors names a weight of "
                                           r"AudioFlamingo3ForConditionalGeneration \(its keys: \['llm\.model"):
        load_model(af3(af3_copy))


def test_a_non_lora_tensor_of_another_shape_is_an_error_naming_it(af3_copy):
    path = af3_copy / "think" / NON_LORA_FILE
    torch.save({"language_model.lm_head.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(AdapterError, match=r"'language_model.lm_head.weight' has shape \(3, 3\), the model's "
                                           r"'lm_head.weight' \(\d+, \d+\)"):
        load_model(af3(af3_copy))


def test_a_lora_weight_missing_from_the_adapter_is_an_error(af3_copy):
    """PEFT would keep the missing layer's initial LoRA (a zero B): think mode silently partial."""
    path = af3_copy / "think" / "adapter_model.safetensors"
    weights = load_file(path)
    save_file({k: v for k, v in weights.items() if ".layers.1.mlp.up_proj." not in k}, path)
    with pytest.raises(AdapterError, match=r"think: the LoRA does not fit AudioFlamingo3ForConditionalGeneration: "
                                           r"missing \[.*layers\.1\.mlp\.up_proj\.lora_A"):
        load_model(af3(af3_copy))


# ---- the merged checkpoint (vLLM) --------------------------------------------------------------
@pytest.fixture(scope="module")
def merged(tiny_zoo, tmp_path_factory):  # noqa: F811
    """`avrt merge-adapter` on the demo's audio teacher pointed at the tiny AF3 and set to vLLM."""
    root = tmp_path_factory.mktemp("merged")
    folder = tiny_zoo / "audio_flamingo3"
    overlay = root / "vllm.yaml"
    overlay.write_text(json.dumps({"models": {"audio_teacher": {
        "checkpoint": str(folder), "adapter": str(folder), "backend": "vllm"}}}))
    configs = [str(REPO / "config" / "demo.yaml"), str(overlay)]
    spec = model_spec(load_config(*configs), "audio_teacher")
    out = root / merged_name(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["merge-adapter", "--config", *configs, "--model", "audio_teacher", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    return spec, out, configs


def test_the_merged_checkpoint_loads_with_plain_transformers_as_the_backend_runs_think_mode(merged, monkeypatch):
    spec, out, _ = merged
    assert spec.backend == "vllm" and spec.dtype == "float32"
    assert not list(out.rglob("adapter_config.json")) and not list(out.rglob(NON_LORA_FILE))
    folder = Path(spec.checkpoint)
    think = load_model(replace(spec, backend="hf"))
    monkeypatch.setitem(sys.modules, "peft", None)  # any `import peft` now raises ImportError
    plain = base_model(out)
    assert torch.allclose(logits(plain, out), logits(think.model, folder), atol=1e-5)
    assert AutoProcessor.from_pretrained(out).chat_template == AutoProcessor.from_pretrained(folder).chat_template
    # loaded as the workflow hands it to a job: no adapter, the same answers
    from_merge = load_model(merged_spec(replace(spec, backend="hf"), out))
    request = [GenerationRequest("q", "What makes the sound?")]
    assert from_merge.generate(request) == think.generate(request)


def test_a_rerun_with_the_same_inputs_does_nothing_and_other_inputs_are_refused(merged, tmp_path):
    spec, out, configs = merged
    files = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["merge-adapter", "--config", *configs, "--model", "audio_teacher", "--out", str(out)]) == 0
    assert merge_adapter(spec, out) is False
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == files
    stamp = json.loads((out / STAMP).read_text())
    assert stamp["inputs"]["adapter_subfolder"] == "think" and out.name.endswith(stamp["digest"])
    other = replace(spec, dtype="bfloat16")  # another input: another digest, another folder
    assert merged_name(other) != out.name
    with pytest.raises(FileExistsError, match=rf"{re.escape(str(out))}: holds the merge of other inputs"):
        merge_adapter(other, out)
    with pytest.raises(InputFileError, match=r"merges .* not models.audio_teacher's"):
        merged_spec(other, out)
    with pytest.raises(InputFileError, match=rf"no {STAMP}"):
        merged_spec(spec, tmp_path)


def test_vllm_loads_the_merged_checkpoint_with_no_lora(merged, tiny_zoo):  # noqa: F811
    spec, out, _ = merged
    # saved in the checkpoint layout, the names vLLM's AudioFlamingo3ForConditionalGeneration loads
    assert {key.split(".")[0] for key in load_file(out / "model.safetensors")} == {
        "language_model", "audio_tower", "multi_modal_projector"}
    loaded = merged_spec(spec, out)
    kwargs = engine_kwargs(loaded)
    assert (kwargs["model"], kwargs["tokenizer"], kwargs["revision"]) == (str(out), str(out), None)
    assert "enable_lora" not in kwargs
    engine = type("StandInEngine", (), {"get_tokenizer": lambda self: AutoTokenizer.from_pretrained(out)})()
    assert VLLMBackend(loaded, engine=engine).adapter_dir is None


def test_merging_a_model_without_an_adapter_is_refused_naming_the_key(merged, capsys):
    _, out, configs = merged
    assert main(["merge-adapter", "--config", *configs, "--model", "merger", "--out", str(out.parent / "x")]) == 2
    assert "config key 'models.merger.adapter' is not set" in capsys.readouterr().err


# ---- the workflow makes it once and its jobs load it --------------------------------------------
@pytest.mark.integration
def test_the_paper_run_merges_the_audio_teacher_once_and_its_jobs_load_the_merge(tmp_path):
    from avrt.demo.dry_run import write_dry_run_stubs

    workdir = copy_workflow(tmp_path)
    write_dry_run_stubs(workdir / "stubs", load_yaml(workdir / "config" / "config.yaml"))
    out = run_snakemake(workdir, "-n", "-p", "--configfile", "config/config.yaml", "stubs/overlay.yaml").stdout
    config = load_config(workdir / "results" / "avrt-3b" / "config.yaml")
    folder = f"results/avrt-3b/models/merged/{merged_name(model_spec(config, 'audio_teacher'))}"
    commands = re.findall(r"^Shell command: (.*)$", out, re.M)
    merges = [c for c in commands if c.startswith("avrt merge-adapter ")]
    assert merges == [f"avrt merge-adapter --config results/avrt-3b/config.yaml --model audio_teacher --out {folder}"
                      f" > results/avrt-3b/logs/merge_adapter/{Path(folder).name}.log 2>&1"]
    audio = [c for c in commands if re.match(r"avrt (teacher|evaluate) .*--teacher audio ", c)]
    visual = [c for c in commands if re.match(r"avrt (teacher|evaluate) .*--teacher visual ", c)]
    assert len(audio) == len(visual) == 64 + 1  # a job per shard, and Table 8's difficulty answers
    assert all(f"--merged-checkpoint {folder} " in c for c in audio)
    assert not any("--merged-checkpoint" in c for c in visual)
    # a recipe that shares the traces takes the merge from the run it shares them with
    recipe = run_snakemake(workdir, "-n", "-p", "--configfile", "config/config.yaml",
                           "config/recipes/audio-chains.yaml", "stubs/overlay.yaml").stdout
    assert re.findall(r"^Shell command: (avrt merge-adapter .*)$", recipe, re.M) == [merges[0]]


@pytest.mark.integration
def test_a_vllm_adapter_model_in_a_role_that_loads_no_merge_stops_the_workflow(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "judge.yaml").write_text(json.dumps({"models": {"judge": {
        "backend": "vllm", "adapter": "nvidia/audio-flamingo-3-hf", "adapter_subfolder": "think"}}}))
    proc = run_snakemake(workdir, "-n", "--configfile", "config/config.yaml", "config/recipes/trace-judge.yaml",
                         "judge.yaml", check=False)
    assert proc.returncode != 0
    assert ("config key 'judge.model': models.judge runs on vLLM with an adapter, which only the teacher and"
            " evaluation jobs load") in proc.stdout + proc.stderr
