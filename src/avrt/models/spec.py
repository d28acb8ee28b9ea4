"""Model specs: what a config says about one model, as frozen, typed objects.

`ModelSpec.from_config(name, cfg)` accepts one entry of the config's `models:` mapping. Missing
keys are filled from the schema's `$defs/model_spec` defaults and the entry is validated against
it, so a spec built here is the same whether it came from a full pipeline config or a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from avrt.core.config import ConfigError, check_remote_code, load_schema, validate_config

BACKENDS = ("vllm", "hf")
# Evaluation decodes every item greedily, once, whatever sampling its model's spec sets (the
# evaluation stage applies it; the workflow's evaluate rules read these values, not the spec's).
EVALUATION_SAMPLING = {"temperature": 0.0, "n": 1}
# Keys of a model spec that set how fast it answers, not what: prompts per transformers generate()
# call, sequences vLLM schedules at once, and vLLM's share of GPU memory. Each sample keeps its own
# seed whatever shares its batch.
THROUGHPUT_KEYS = ("batch_size", "max_num_seqs", "gpu_memory_utilization")


@dataclass(frozen=True)
class SamplingParams:
    """Decoding parameters shared by both backends; temperature 0 means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1  # -1: no top-k cut
    max_new_tokens: int = 1024
    n: int = 1  # samples per prompt
    seed: int = 0  # base seed; each sample's seed is derived from it (see backends.sample_seed)
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def from_config(cls, cfg: dict) -> SamplingParams:
        return cls(**cfg)


@dataclass(frozen=True)
class ModelSpec:
    """One model answering prompts with media: family, checkpoint, backend and decoding."""

    name: str
    family: str
    checkpoint: str
    revision: str | None = None
    processor: str | None = None
    backend: str = "hf"
    dtype: str = "bfloat16"
    tensor_parallel_size: int = 1
    max_model_len: int = 32768
    max_num_seqs: int = 64
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool = False
    skip_mm_profiling: bool = False
    engine_in_process: bool = False
    batch_size: int = 4
    limit_mm_per_prompt: dict[str, int] = field(default_factory=dict)
    adapter: str | None = None
    adapter_subfolder: str | None = None
    prompt_suffix: str = ""
    system_prompt: str | None = None
    video_fps: float = 2.0
    video_max_frames: int = 768
    trust_remote_code: bool = False
    sampling: SamplingParams = field(default_factory=SamplingParams)

    @property
    def processor_source(self) -> str:
        """Where the processor/tokenizer loads from (`processor`, else the checkpoint)."""
        return self.processor or self.checkpoint

    @classmethod
    def from_config(cls, name: str, cfg: dict) -> ModelSpec:
        """Build from one `models:` entry; unknown keys or bad values raise ConfigError naming them."""
        try:
            filled = validate_config(dict(cfg), schema=_model_spec_schema())
        except ConfigError as err:
            raise ConfigError(f"model '{name}': {err}") from None
        check_remote_code(f"models.{name}", filled)
        values = {k: v for k, v in filled.items() if k != "sampling"}
        return cls(name=name, sampling=SamplingParams.from_config(filled["sampling"]), **values)


def model_spec(config: dict, name: str) -> ModelSpec:
    """The spec named `name` under the config's `models:` mapping."""
    models = config.get("models", {})
    if name not in models:
        raise ConfigError(
            f"config key 'models.{name}' is not defined (defined: {', '.join(sorted(models)) or 'none'})"
        )
    return ModelSpec.from_config(name, models[name])


def _model_spec_schema() -> dict:
    """`$defs/model_spec` as a root schema (it refers to `$defs/sampling`)."""
    schema = load_schema()
    return {"$defs": schema["$defs"], **schema["$defs"]["model_spec"]}
