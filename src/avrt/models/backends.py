"""One interface over the two generation backends: `load_model(spec).generate(requests)`.

Both backends take `GenerationRequest`s, render them through the spec's family adapter, and
return one `Completion` per (request, sample), ordered by request then sample index. The vLLM
backend (clusters, GPUs) is imported only when a spec asks for it, so nothing else needs vLLM.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from avrt.models.adapters import FamilyAdapter, GenerationRequest, get_adapter
from avrt.models.spec import BACKENDS, ModelSpec

__all__ = ["Completion", "GenerationBackend", "GenerationRequest", "load_model", "sample_seed"]


@dataclass(frozen=True)
class Completion:
    """One sampled answer to one request (the record every model-facing stage writes)."""

    request_id: str
    sample_index: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn), "length" (max_new_tokens reached), or vLLM's "abort"
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


class GenerationBackend(ABC):
    """A loaded model that answers batches of requests."""

    def __init__(self, spec: ModelSpec, adapter: FamilyAdapter | None = None):
        self.spec = spec
        self.adapter = adapter or get_adapter(spec.family)

    def close(self) -> None:
        """Release what the backend holds beyond Python objects (vLLM: its engine processes)."""

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """Answer every request `spec.sampling.n` times."""


def load_model(spec: ModelSpec) -> GenerationBackend:
    """Load the spec's checkpoint (hub name or local directory) on its backend."""
    if spec.backend == "vllm":
        from avrt.models.vllm_backend import VLLMBackend

        return VLLMBackend(spec)
    if spec.backend == "hf":
        from avrt.models.hf_backend import HFBackend

        return HFBackend(spec)
    raise ValueError(f"model '{spec.name}': unknown backend {spec.backend!r} (known: {', '.join(BACKENDS)})")


def sample_seed(base_seed: int, request_id: str, sample_index: int) -> int:
    """Seed of one sample, from the spec's base seed and the sample's identity.

    It does not depend on batch composition or order, so a resumed or re-sharded run draws the
    same samples.
    """
    digest = hashlib.sha256(f"{base_seed}/{request_id}/{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFFFFFF


def check_unique_ids(requests: list[GenerationRequest]) -> None:
    """Completions are keyed by request id, so ids within one call must differ."""
    dupes = sorted(i for i, count in Counter(r.request_id for r in requests).items() if count > 1)
    if dupes:
        raise ValueError(f"duplicate request ids {dupes[:5]}{' ...' if len(dupes) > 5 else ''}")


def resolve_adapter_dir(spec: ModelSpec) -> Path | None:
    """Local directory of the spec's PEFT adapter (downloading `adapter_subfolder` only), or None."""
    if not spec.adapter:
        return None
    local = Path(spec.adapter)
    if local.is_dir():
        root = local
    else:
        from huggingface_hub import snapshot_download

        patterns = [f"{spec.adapter_subfolder}/*"] if spec.adapter_subfolder else None
        # The pinned revision is the checkpoint's: it applies when the adapter lives in the same repo.
        revision = spec.revision if spec.adapter == spec.checkpoint else None
        root = Path(snapshot_download(spec.adapter, revision=revision, allow_patterns=patterns))
    path = root / spec.adapter_subfolder if spec.adapter_subfolder else root
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"model '{spec.name}': no PEFT adapter (adapter_config.json) in {path}")
    return path


def adapter_rank(adapter_dir: Path) -> int:
    """LoRA rank `r` of a PEFT adapter."""
    return int(json.loads((adapter_dir / "adapter_config.json").read_text())["r"])
