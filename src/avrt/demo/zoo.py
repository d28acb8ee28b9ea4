"""Build tiny random-weight models, offline, that load exactly like the real checkpoints.

`avrt zoo --out DIR [--families ...]` writes, per family, `DIR/<family>/` with a model saved by
`save_pretrained`, its real processor (tokenizer, image/video processors, Whisper feature
extractor) and the family's chat template, plus `DIR/zoo.json` listing what was built. Specs
point `checkpoint` at these directories and the pipeline loads them through the same code as
hub checkpoints. Weights are seeded, so a build is reproducible; all of it takes seconds on a CPU.
With `--warm-up-config` it first trains the models a run config's `demo_warm_up` names for their
task (`avrt.demo.warm_up`; minutes).

The tokenizer is a byte-level BPE trained here on a few sentences, carrying the special tokens
of every family, so the processors expand media placeholders exactly as the real ones do.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

from avrt.models import chat_templates

log = logging.getLogger(__name__)

FAMILIES = ("qwen2_5_omni", "qwen2_5_vl", "qwen2_audio", "audio_flamingo3", "text_llm")
THINK_SUBFOLDER = "think"  # where the Audio Flamingo 3 think adapter goes, as in the hub repo

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    # Qwen2-Audio and Qwen2.5-Omni
    "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
    # Qwen2.5-Omni
    "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>",
    # Qwen2.5-VL
    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
    # Audio Flamingo 3
    "<sound>",
]
CORPUS = [
    "system user assistant You are a helpful assistant.",
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
    "perceiving auditory and visual inputs, as well as generating text and speech.",
    "What is the source of the sound in the video? Choose one among the following options: "
    "(A) a dog (B) a car (C) a guitar (D) the wind",
    "<think>The audio has a steady engine hum and the frames show a road.</think><answer>B</answer>",
    "Visual Description: Across these video frames, I can see a person playing an instrument.",
    "Audio Description: This audio features a high-energy track. Reasoning: Answer: (A)",
    "Please think and reason about the input audio before you respond.",
]
VOCAB_SIZE = 512

# Shared tiny text decoder. head_dim 32, the smallest vLLM's CPU attention runs; it is
# 2 * sum(mrope_section) for the Qwen2.5 multimodal models.
TEXT = dict(hidden_size=64, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=8192)
MROPE = {"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 10000.0}
VISION = dict(depth=2, hidden_size=32, intermediate_size=32, num_heads=4, out_hidden_size=TEXT["hidden_size"], patch_size=14,
              spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[0], window_size=112)
WHISPER_ENCODER = dict(num_mel_bins=128, max_source_positions=1500)  # 30 s of 128-bin log-mel
# Pixel budget per frame of the tiny Qwen2.5-VL processors (the real ones: 128 to 768 tokens of
# 28x28 px): 4 to 16 tokens, so a CPU encodes a clip's frames in milliseconds; the processing code is
# the same. (Qwen2.5-Omni's processor sets its own video budget, so its tiny processors keep the defaults.)
PIXELS = {"shortest_edge": 4 * 28 * 28, "longest_edge": 16 * 28 * 28}


def train_tokenizer(path: Path) -> Path:
    """Train the byte-level BPE tokenizer and write it as `tokenizer.json`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer)
    tokenizer.save(str(path))
    return path


class _Builder:
    """Builds the tiny models of one zoo from one trained tokenizer."""

    def __init__(self, tokenizer_file: Path, seed: int):
        from transformers import Qwen2TokenizerFast

        self.tokenizer_file = tokenizer_file
        self.seed = seed
        base = Qwen2TokenizerFast(tokenizer_file=str(tokenizer_file))
        self.ids = {token: base.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
        self.vocab_size = len(base)
        user = base.encode("user")
        self.user_id = user[0] if len(user) == 1 else self.ids["<|endoftext|>"]

    def tokenizer(self, chat_template: str | None = None, **named_tokens):
        from transformers import Qwen2TokenizerFast

        return Qwen2TokenizerFast(
            tokenizer_file=str(self.tokenizer_file),
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            unk_token="<|endoftext|>",
            chat_template=chat_template,
            extra_special_tokens=named_tokens,
        )

    def text_config(self, **extra) -> dict:
        # Untied output head, as the 7B checkpoints have; said in the text config itself, which is
        # where vLLM reads it (transformers' Omni thinker reads its own, outer, setting).
        return dict(TEXT, vocab_size=self.vocab_size, bos_token_id=None, eos_token_id=self.ids["<|im_end|>"],
                    pad_token_id=self.ids["<|endoftext|>"], tie_word_embeddings=False, **extra)

    def generation_config(self):
        from transformers import GenerationConfig

        return GenerationConfig(
            eos_token_id=[self.ids["<|im_end|>"], self.ids["<|endoftext|>"]], pad_token_id=self.ids["<|endoftext|>"]
        )

    def save(self, model, processor, out: Path) -> int:
        from avrt.models.saved_layout import save_checkpoint

        model.generation_config = self.generation_config()
        save_checkpoint(model, out)
        processor.save_pretrained(out)
        return sum(p.numel() for p in model.parameters())

    def seeded(self):
        import torch

        torch.manual_seed(self.seed)

    def whisper(self):
        from transformers import WhisperFeatureExtractor

        return WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, chunk_length=30)

    # ---- families ---------------------------------------------------------------------------
    def qwen2_5_omni(self, out: Path) -> dict:
        """Saved as the full Qwen2.5-Omni model without its speech head, as the hub checkpoints are laid out."""
        from transformers import (Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor,
                                  Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

        ids = self.ids
        tokens = dict(
            audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"], video_token_index=ids["<|VIDEO|>"],
            audio_start_token_id=ids["<|audio_bos|>"], audio_end_token_id=ids["<|audio_eos|>"],
            vision_start_token_id=ids["<|vision_bos|>"], vision_end_token_id=ids["<|vision_eos|>"],
        )
        thinker = dict(
            audio_config=dict(WHISPER_ENCODER, d_model=32, encoder_layers=2, encoder_attention_heads=4,
                              encoder_ffn_dim=32, n_window=100, output_dim=TEXT["hidden_size"]),
            vision_config=VISION,
            text_config=self.text_config(rope_parameters=MROPE),
            user_token_id=self.user_id,
            **tokens,
        )
        # The speech head is never built; its config only has to name ids inside the tiny vocabulary.
        pad = ids["<|endoftext|>"]
        talker = dict(tokens, vocab_size=self.vocab_size, tts_text_start_token_id=pad, tts_text_end_token_id=pad,
                      tts_text_pad_token_id=pad, tts_codec_start_token_id=pad, tts_codec_end_token_id=pad,
                      tts_codec_pad_token_id=pad, tts_codec_mask_token_id=pad)
        self.seeded()
        model = Qwen2_5OmniForConditionalGeneration(
            Qwen2_5OmniConfig(thinker_config=thinker, talker_config=talker, enable_audio_output=False)
        )
        tokenizer = self.tokenizer(
            audio_token="<|AUDIO|>", image_token="<|IMAGE|>", video_token="<|VIDEO|>",
            audio_bos_token="<|audio_bos|>", audio_eos_token="<|audio_eos|>",
            vision_bos_token="<|vision_bos|>", vision_eos_token="<|vision_eos|>",
        )
        processor = Qwen2_5OmniProcessor(
            image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor(),
            feature_extractor=self.whisper(), tokenizer=tokenizer, chat_template=chat_templates.QWEN2_5_OMNI,
        )
        return {"parameters": self.save(model, processor, out)}

    def qwen2_5_vl(self, out: Path) -> dict:
        from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                                  Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

        ids = self.ids
        self.seeded()
        model = Qwen2_5_VLForConditionalGeneration(
            Qwen2_5_VLConfig(
                text_config=self.text_config(rope_parameters=MROPE),
                vision_config=VISION,
                image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            )
        )
        tokenizer = self.tokenizer(image_token="<|image_pad|>", video_token="<|video_pad|>",
                                   vision_start_token="<|vision_start|>", vision_end_token="<|vision_end|>")
        processor = Qwen2_5_VLProcessor(
            image_processor=Qwen2VLImageProcessor(size=PIXELS), video_processor=Qwen2VLVideoProcessor(size=PIXELS),
            tokenizer=tokenizer, chat_template=chat_templates.QWEN2_5_VL,
        )
        return {"parameters": self.save(model, processor, out)}

    def qwen2_audio(self, out: Path) -> dict:
        from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

        self.seeded()
        model = Qwen2AudioForConditionalGeneration(
            Qwen2AudioConfig(
                audio_config=dict(WHISPER_ENCODER, d_model=32, encoder_layers=2, encoder_attention_heads=4,
                                  encoder_ffn_dim=32),
                text_config=self.text_config(model_type="qwen2"),
                audio_token_index=self.ids["<|AUDIO|>"],
            )
        )
        tokenizer = self.tokenizer(audio_token="<|AUDIO|>", audio_bos_token="<|audio_bos|>",
                                   audio_eos_token="<|audio_eos|>")
        processor = Qwen2AudioProcessor(feature_extractor=self.whisper(), tokenizer=tokenizer,
                                        chat_template=chat_templates.QWEN2_AUDIO)
        return {"parameters": self.save(model, processor, out)}

    def audio_flamingo3(self, out: Path) -> dict:
        """The model plus a random "think" adapter in `think/`, laid out as the hub repo's is."""
        from transformers import (AudioFlamingo3Config, AudioFlamingo3ForConditionalGeneration,
                                  AudioFlamingo3Processor)

        self.seeded()
        model = AudioFlamingo3ForConditionalGeneration(
            AudioFlamingo3Config(
                audio_config=dict(WHISPER_ENCODER, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=32),
                text_config=self.text_config(model_type="qwen2"),
                audio_token_id=self.ids["<sound>"],
            )
        )
        processor = AudioFlamingo3Processor(feature_extractor=self.whisper(), tokenizer=self.tokenizer(),
                                            chat_template=chat_templates.AUDIO_FLAMINGO3)
        parameters = self.save(model, processor, out)
        self.think_adapter(model, out, out / THINK_SUBFOLDER)
        return {"parameters": parameters, "adapter": str(out), "adapter_subfolder": THINK_SUBFOLDER}

    def think_adapter(self, model, checkpoint: Path, out: Path, identity: bool = False) -> None:
        """Audio Flamingo 3's think adapter in miniature (src/avrt/models/peft_adapter.py has the
        real one's facts): `non_lora_trainables.bin` and a PEFT LoRA, both named in the checkpoint's
        layout (`language_model.model.*`), not the module tree transformers builds from it.

        The non-LoRA part is the LLM's token embeddings and output head, perturbed. That is our
        reading of AF3's stage-3.5 trainer (the file itself was not inspected): it freezes the audio
        tower and projector and puts LoRA on the LLM, and the embedding resize it does after
        wrapping the model (a bos token for Qwen2's tokenizer) leaves those two trainable. The LoRA
        targets every linear layer of the LLM's decoder by full name, as its `find_all_linear_names`
        lists them. Weights are random, not zero: each part visibly changes the model.

        `identity`: the adapter of a warmed-up model (`avrt.demo.warm_up`), which must not undo its
        training: the non-LoRA part holds the model's own weights and the LoRA is zero, so the
        merged model is the model.
        """
        import torch
        from peft import LoraConfig, get_peft_model
        from safetensors import safe_open
        from safetensors.torch import load_file, save_file

        from avrt.models.peft_adapter import NON_LORA_FILE, checkpoint_key_renamer

        rename = checkpoint_key_renamer(model)
        with safe_open(str(checkpoint / "model.safetensors"), framework="pt") as saved:
            as_saved = {rename(key): key for key in saved.keys()}  # the model's name -> the checkpoint's

        def saved_module(name: str) -> str:
            return as_saved[f"{name}.weight"].removesuffix(".weight")

        out.mkdir(parents=True)
        self.seeded()
        own = model.state_dict()
        non_lora = {}
        for name in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
            weight = own[name]
            noise = 0 if identity else model.config.text_config.initializer_range * torch.randn_like(weight)
            non_lora[as_saved[name]] = weight + noise
        torch.save(non_lora, out / NON_LORA_FILE)

        targets = sorted(name for name, module in model.named_modules()
                         if isinstance(module, torch.nn.Linear) and name.startswith("model.language_model."))
        get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=identity)) \
            .save_pretrained(out)
        config_file, weights_file = out / "adapter_config.json", out / "adapter_model.safetensors"
        config = json.loads(config_file.read_text())
        config["target_modules"] = sorted(saved_module(t) for t in targets)
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        weights = {}
        for key, tensor in load_file(weights_file).items():  # base_model.model.<module>.lora_{A,B}.weight
            module, lora = key.removeprefix("base_model.model.").split(".lora_")
            weights[f"base_model.model.{saved_module(module)}.lora_{lora}"] = tensor
        save_file(weights, weights_file, metadata={"format": "pt"})

    def text_llm(self, out: Path) -> dict:
        from transformers import Qwen2Config, Qwen2ForCausalLM

        self.seeded()
        model = Qwen2ForCausalLM(Qwen2Config(**self.text_config()))
        tokenizer = self.tokenizer(chat_template=chat_templates.QWEN2_5_INSTRUCT)
        return {"parameters": self.save(model, tokenizer, out)}


@contextmanager
def _quiet_transformers():
    """Silence progress bars and the warnings transformers logs about default (unused) sub-configs."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def build_zoo(out_dir: str | Path, families=FAMILIES, seed: int = 0, warm_up_config: dict | None = None) -> dict:
    """Build the tiny models of `families` under `out_dir`; returns (and writes) the manifest.

    `warm_up_config`: a run config whose `demo_warm_up` names models to train for their task
    before they are put in place (`avrt.demo.warm_up`); each must load its checkpoint from here.
    """
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"no tiny model for families {unknown} (available: {', '.join(FAMILIES)})")
    warm = _warm_up_roles(Path(out_dir), families, warm_up_config) if warm_up_config else {}
    with _quiet_transformers():
        return _build(Path(out_dir), families, seed, warm, warm_up_config)


def _warm_up_roles(out_dir: Path, families, config: dict) -> dict:
    """family -> the warm-up role of the model that loads it from `out_dir`."""
    from avrt.demo.warm_up import roles
    from avrt.models.spec import model_spec

    warm = {}
    for role in roles(config):
        checkpoint = Path(model_spec(config, role.model).checkpoint)
        if checkpoint.parent != out_dir or checkpoint.name not in families:
            raise ValueError(f"config key 'demo_warm_up.models': models.{role.model} loads {checkpoint}, "
                             f"which this zoo ({out_dir}, families {list(families)}) does not build")
        if checkpoint.name in warm:
            raise ValueError(f"config key 'demo_warm_up.models': models.{warm[checkpoint.name].model} and "
                             f"models.{role.model} both load {checkpoint}; one checkpoint is warmed up for one task")
        warm[checkpoint.name] = role
    return warm


def _build(out_dir: Path, families, seed: int, warm: dict, warm_up_config: dict | None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"seed": seed, "families": {}}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        tmp = Path(tmp)
        builder = _Builder(train_tokenizer(tmp / "tokenizer.json"), seed)
        release = None
        for family in families:
            staging = tmp / family
            info = getattr(builder, family)(staging)
            if family in warm:
                from avrt.demo import warm_up

                if release is None:  # one warm-up release for every model
                    release = warm_up.warm_up_release(warm_up_config, tmp / "warm-up")
                trained = tmp / f"{family}-warm"
                spec = warm_up.warm_up_spec(warm_up_config, warm[family], staging)
                info["warm_up"] = warm_up.train(warm[family], spec, *release, warm_up_config, trained)
                if "adapter" in info:
                    builder.think_adapter(_load(family, trained), trained, trained / THINK_SUBFOLDER, identity=True)
                shutil.rmtree(staging)
                trained.rename(staging)
            final = out_dir / family
            if final.exists():
                shutil.rmtree(final)
            # Built aside and moved in whole, so a directory that exists is complete.
            staging.rename(final)
            if "adapter" in info:
                info["adapter"] = str(final)
            manifest["families"][family] = {"checkpoint": str(final), **info}
            log.info("built tiny %s (%d parameters) in %s", family, info["parameters"], final)
    (out_dir / "zoo.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _load(family: str, checkpoint: Path):
    import transformers

    from avrt.models.adapters import get_adapter

    model = getattr(transformers, get_adapter(family).hf_model_class).from_pretrained(checkpoint)
    # named as a model built here is: the adapter config would otherwise hold the build's temporary path
    model.config._name_or_path = model.name_or_path = ""
    return model


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="directory to write DIR/<family>/ and DIR/zoo.json into")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES, metavar="FAMILY",
                        help=f"families to build (default: all of {', '.join(FAMILIES)})")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    parser.add_argument("--warm-up-config", nargs="+", type=Path, metavar="YAML",
                        help="a run config whose `demo_warm_up` names models to train for their task first (the demo)")


def run(args) -> int:
    from avrt.core.config import load_config

    config = load_config(*args.warm_up_config) if args.warm_up_config else None
    build_zoo(args.out, args.families, args.seed, config if config and config["demo_warm_up"] else None)
    return 0
