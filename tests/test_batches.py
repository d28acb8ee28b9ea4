"""Label masking and batching (`avrt.training.batches`) on tensors laid out as the processors lay them out.

These are the fast unit tests run by `make mutation`; tests/test_sft.py and tests/test_grpo_trainer.py
feed the same functions real Qwen2.5-Omni processor outputs of real clips.
"""

from __future__ import annotations

import pytest
import torch

from avrt.training.batches import (
    IGNORE_INDEX,
    SFTCollator,
    concat_padded,
    group_batch,
    pad_completions,
    sft_item,
)

MEDIA_KWARGS = {"use_audio_in_video": True}


def prompt(ids: list[int], frames: int, audio_frames: int) -> dict:
    """Processor outputs of one prompt (a batch of one): token tensors (1, T), media tensors."""
    n = len(ids)
    return {
        "input_ids": torch.tensor([ids], dtype=torch.int32),  # any integer dtype: items are made long
        "attention_mask": torch.ones((1, n), dtype=torch.int32),
        "mm_token_type_ids": torch.full((1, n), 2, dtype=torch.int32),
        "pixel_values_videos": torch.arange(frames * 3, dtype=torch.float64).reshape(frames, 3) + 1,
        "video_grid_thw": torch.tensor([[frames, 1, 1]]),
        "input_features": torch.ones((1, 2, audio_frames), dtype=torch.float64),
        "feature_attention_mask": torch.ones((1, audio_frames), dtype=torch.long),
    }


def item(ids, completion, frames=2, audio_frames=4, kwargs=MEDIA_KWARGS) -> dict:
    return sft_item(prompt(ids, frames, audio_frames), torch.tensor(completion), dict(kwargs))


# ---- SFT items: labels on the completion only ------------------------------------------------------
def test_an_sft_item_labels_only_the_completion_and_extends_every_token_tensor_over_it():
    p = prompt([11, 12, 13], frames=2, audio_frames=4)
    made = sft_item(p, torch.tensor([21, 22]), {"k": 1})
    assert made["input_ids"].tolist() == [11, 12, 13, 21, 22]
    assert made["labels"].tolist() == [IGNORE_INDEX] * 3 + [21, 22]
    assert made["attention_mask"].tolist() == [1, 1, 1, 1, 1]
    assert made["mm_token_type_ids"].tolist() == [2, 2, 2, 0, 0]  # the completion is text
    for key in ("input_ids", "attention_mask", "mm_token_type_ids", "labels"):
        assert made[key].dtype == torch.long and made[key].dim() == 1
    for key in ("pixel_values_videos", "video_grid_thw", "input_features", "feature_attention_mask"):
        assert made[key] is p[key]  # media as the processor made them
    assert made["forward_kwargs"] == {"k": 1}


def test_an_empty_completion_has_no_label():
    made = sft_item(prompt([5, 6], 1, 1), torch.tensor([], dtype=torch.long), {})
    assert made["input_ids"].tolist() == [5, 6]
    assert (made["labels"] == IGNORE_INDEX).all() and made["labels"].shape == (2,)


# ---- SFT batches ------------------------------------------------------------------------------------
def test_the_sft_collator_right_pads_tokens_and_labels_and_concatenates_media():
    long, short = item([1, 2, 3], [7, 8], frames=3, audio_frames=4), item([4], [9], frames=1, audio_frames=2)
    batch = SFTCollator(pad_token_id=99)([long, short])
    assert batch["input_ids"].tolist() == [[1, 2, 3, 7, 8], [4, 9, 99, 99, 99]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX] * 3 + [7, 8], [IGNORE_INDEX, 9] + [IGNORE_INDEX] * 3]
    assert batch["attention_mask"].tolist() == [[1] * 5, [1, 1, 0, 0, 0]]
    assert batch["mm_token_type_ids"].tolist() == [[2, 2, 2, 0, 0], [2, 0, 0, 0, 0]]
    # media: rows of both items in order; audio frames zero-padded to the longer clip
    assert torch.equal(batch["pixel_values_videos"], torch.cat([long["pixel_values_videos"],
                                                                short["pixel_values_videos"]]))
    assert batch["video_grid_thw"].tolist() == [[3, 1, 1], [1, 1, 1]]
    assert batch["input_features"].shape == (2, 2, 4)
    assert batch["input_features"][1, :, 2:].eq(0).all() and batch["input_features"][1, :, :2].eq(1).all()
    assert batch["feature_attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["use_audio_in_video"] is True and "forward_kwargs" not in batch


def test_the_sft_collator_casts_media_features_only_to_the_model_dtype():
    batch = SFTCollator(0, feature_dtype=torch.bfloat16)([item([1], [2]), item([3], [4])])
    assert batch["pixel_values_videos"].dtype == batch["input_features"].dtype == torch.bfloat16
    assert batch["video_grid_thw"].dtype == batch["feature_attention_mask"].dtype == torch.long
    assert batch["input_ids"].dtype == torch.long
    kept = SFTCollator(0)([item([1], [2]), item([3], [4])])
    assert kept["input_features"].dtype == torch.float64


def test_the_sft_collator_refuses_a_batch_of_clips_read_differently():
    with pytest.raises(ValueError, match="mixes clips"):
        SFTCollator(0)([item([1], [2]), item([3], [4], kwargs={"use_audio_in_video": False})])


# ---- GRPO group batches ------------------------------------------------------------------------------
def test_a_group_batch_left_pads_and_repeats_each_prompt_with_its_own_media():
    first, second = prompt([1, 2, 3], frames=2, audio_frames=4), prompt([4], frames=1, audio_frames=2)
    batch = group_batch([first, second], group_size=2, pad_token_id=99, feature_dtype=torch.float32)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [1, 2, 3], [99, 99, 4], [99, 99, 4]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1]] * 2 + [[0, 0, 1]] * 2
    assert batch["mm_token_type_ids"].tolist() == [[2, 2, 2]] * 2 + [[0, 0, 2]] * 2
    copies = [first["pixel_values_videos"]] * 2 + [second["pixel_values_videos"]] * 2
    assert torch.equal(batch["pixel_values_videos"], torch.cat(copies).float())
    assert batch["pixel_values_videos"].dtype == torch.float32
    assert batch["video_grid_thw"].tolist() == [[2, 1, 1]] * 2 + [[1, 1, 1]] * 2
    assert batch["video_grid_thw"].dtype == torch.long
    assert batch["feature_attention_mask"].tolist() == [[1] * 4] * 2 + [[1, 1, 0, 0]] * 2


def test_a_group_batch_keeps_media_dtypes_without_a_feature_dtype():
    batch = group_batch([prompt([1], 1, 1)], group_size=3, pad_token_id=0)
    assert batch["input_ids"].tolist() == [[1]] * 3
    assert batch["input_features"].dtype == torch.float64 and batch["input_features"].shape == (3, 2, 1)


# ---- completions ------------------------------------------------------------------------------------
def test_completions_end_at_their_first_stop_token_of_any_kind_which_they_keep():
    ids, mask = pad_completions([[5, 3, 6, 2], [5, 6, 7, 8], [2, 5]], stop_ids=[2, 3], pad_token_id=0)
    assert ids.tolist() == [[5, 3, 0, 0], [5, 6, 7, 8], [2, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


def test_completions_without_tokens_still_have_one_padded_column():
    ids, mask = pad_completions([[], []], stop_ids=[2], pad_token_id=7)
    assert ids.tolist() == [[7], [7]] and mask.tolist() == [[0], [0]]


# ---- media concatenation -------------------------------------------------------------------------
def test_media_tensors_are_concatenated_with_trailing_dimensions_zero_padded():
    a, b = torch.ones((1, 2, 3)), torch.full((2, 1, 5), 2.0)
    out = concat_padded([a, b])
    assert out.shape == (3, 2, 5)
    assert out[0, :, :3].eq(1).all() and out[0, :, 3:].eq(0).all()
    assert out[1:, 0].eq(2).all() and out[1:, 1].eq(0).all()
    same = [torch.ones((1, 2)), torch.zeros((2, 2))]
    assert torch.equal(concat_padded(same), torch.cat(same))
    assert concat_padded([torch.tensor(1), torch.tensor(2)]).tolist() == [1, 2]  # scalars are stacked


def test_a_batch_of_one_item_is_that_item_with_a_batch_dimension():
    one = item([1, 2], [3])
    batch = SFTCollator(pad_token_id=0)([one])
    assert batch["input_ids"].tolist() == [[1, 2, 3]] and batch["labels"].tolist() == [[IGNORE_INDEX] * 2 + [3]]
    assert torch.equal(batch["pixel_values_videos"], one["pixel_values_videos"])
    assert batch["use_audio_in_video"] is True
    assert torch.equal(concat_padded([one["input_features"]]), one["input_features"])


def test_completions_are_put_on_the_device_they_are_asked_for():
    ids, mask = pad_completions([[1, 2]], stop_ids=[2], pad_token_id=0, device=torch.device("meta"))
    assert ids.device.type == mask.device.type == "meta"
