"""Processor outputs -> training tensors: SFT items with their labels, SFT batches and GRPO group batches.

Processor outputs come in two kinds. Token tensors (`TOKEN_KEYS`) have one entry per token: they
are extended over a completion and padded along the sequence. Every other output is a media tensor
(video patches, audio features, grid sizes, feature masks) that is concatenated along dim 0 in row
order, zero-padded where a trailing dimension differs between clips.

Label masking (SFT): only the assistant's completion carries labels; the prompt, its media
placeholders and the padding carry `IGNORE_INDEX`, so the loss never trains the model to write its
own prompt or media tokens.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # label of every token the loss skips (PyTorch's cross-entropy default)
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")
# Media features are cast to the model's dtype (as the transformers backend does for generation).
FEATURE_KEYS = ("pixel_values", "pixel_values_videos", "input_features")


def sft_item(prompt: dict, completion: torch.Tensor, forward_kwargs: dict) -> dict:
    """One SFT item from a processed prompt (a batch of one) and the completion's token ids.

    Token tensors become 1-D with the completion appended (attended to, token type 0), media
    tensors stay as they are, and `labels` are the completion's ids after one `IGNORE_INDEX` per
    prompt token.
    """
    item: dict = {}
    for key, value in prompt.items():
        if key in TOKEN_KEYS:
            fill = 1 if key == "attention_mask" else 0
            tail = completion if key == "input_ids" else torch.full_like(completion, fill)
            item[key] = torch.cat([value[0].to(tail.dtype), tail])
        else:
            item[key] = value
    prompt_len = prompt["input_ids"].shape[1]
    item["labels"] = torch.cat([torch.full((prompt_len,), IGNORE_INDEX, dtype=torch.long), completion])
    item["forward_kwargs"] = forward_kwargs
    return item


class SFTCollator:
    """Right-pads the token tensors (labels with IGNORE_INDEX) and concatenates the media tensors."""

    def __init__(self, pad_token_id: int, feature_dtype: torch.dtype | None = None):
        self.pad_token_id = pad_token_id
        self.feature_dtype = feature_dtype

    def __call__(self, items: list[dict]) -> dict:
        kwargs = [item["forward_kwargs"] for item in items]
        if any(k != kwargs[0] for k in kwargs):
            raise ValueError(f"a batch mixes clips the model reads differently: {kwargs}")
        length = max(item["input_ids"].shape[0] for item in items)
        batch: dict = {}
        for key in items[0]:
            if key == "forward_kwargs":
                continue
            values = [item[key] for item in items]
            if key in TOKEN_KEYS or key == "labels":
                fill = {"input_ids": self.pad_token_id, "labels": IGNORE_INDEX}.get(key, 0)
                batch[key] = torch.stack(
                    [torch.cat([v, torch.full((length - v.shape[0],), fill, dtype=v.dtype)]) for v in values]
                )
            else:
                batch[key] = concat_padded(values)
                if key in FEATURE_KEYS and self.feature_dtype is not None:
                    batch[key] = batch[key].to(self.feature_dtype)
        batch.update(kwargs[0])
        return batch


def group_batch(encoded: list[dict], group_size: int, pad_token_id: int,
                feature_dtype: torch.dtype | None = None) -> dict:
    """Processor outputs of single prompts -> one batch holding each prompt `group_size` times.

    Row ``i * G + k`` is copy k of prompt i. Token tensors are left padded (generation appends on
    the right); media tensors are concatenated in row order, each prompt's repeated once per copy.
    """
    length = max(item["input_ids"].shape[1] for item in encoded)
    batch: dict = {}
    for key in encoded[0]:
        values = [item[key] for item in encoded]
        if key in TOKEN_KEYS:
            fill = pad_token_id if key == "input_ids" else 0
            rows = [torch.nn.functional.pad(v, (length - v.shape[1], 0), value=fill) for v in values]
            batch[key] = torch.cat(rows).repeat_interleave(group_size, dim=0)
        else:
            batch[key] = concat_padded([v for v in values for _ in range(group_size)])
            if key in FEATURE_KEYS and feature_dtype is not None:
                batch[key] = batch[key].to(feature_dtype)
    return batch


def pad_completions(sequences: list[list[int]], stop_ids: list[int], pad_token_id: int,
                    device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each sequence after its first stop token (kept: the model learns to stop), right pad.

    Returns (completion_ids, completion_mask), both (N, longest); at least one column.
    """
    cut = []
    for tokens in sequences:
        stop_at = next((j for j, t in enumerate(tokens) if t in stop_ids), None)
        cut.append(list(tokens) if stop_at is None else list(tokens[: stop_at + 1]))
    width = max([len(c) for c in cut] + [1])
    ids = torch.full((len(cut), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(cut), width), dtype=torch.long)
    for row, tokens in enumerate(cut):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
    return ids.to(device), mask.to(device)


def concat_padded(values: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0, zero-padding trailing dims that differ (e.g. audio feature frames)."""
    if values[0].dim() == 0:
        return torch.stack(values)
    shape = [max(v.shape[d] for v in values) for d in range(1, values[0].dim())]
    padded = []
    for v in values:
        pad = []
        for d in reversed(range(1, v.dim())):
            pad += [0, shape[d - 1] - v.shape[d]]
        padded.append(torch.nn.functional.pad(v, pad) if any(pad) else v)
    return torch.cat(padded)
