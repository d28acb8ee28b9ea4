"""vLLM's Qwen2.5-Omni thinker with the positions transformers gives audio in video (imported by
vLLM only, through `vllm_plugin`).

With audio in video, a video sits between two pairs of markers: <|vision_bos|><|audio_bos|>, the
interleaved video and audio chunks, <|audio_eos|><|vision_eos|>. transformers' `get_rope_index`
(the implementation the model was released with) gives each pair one shared M-RoPE position;
vLLM 0.32 counts the markers as text, one position each, so every token after the first pair sits
one position later than in transformers, and after the second pair two (vLLM fixed this once, in
PR 16878; its later rewrite that computes positions from the media offsets brought it back). The
demo's trained student answered differently on the two backends because of it, with the same
prompt tokens. With the shift undone its reasoning text agrees; a smaller difference remains with
audio in video (runner-up log-probabilities up to ~0.15 nats, README "vLLM, checked against
transformers"). tests/test_vllm_engine.py checks that vLLM serves the Omni checkpoints with this class.
"""

from __future__ import annotations

from vllm.model_executor.models.qwen2_5_omni_thinker import Qwen2_5OmniThinkerForConditionalGeneration


class Qwen2_5OmniThinkerReferencePositions(Qwen2_5OmniThinkerForConditionalGeneration):
    def get_mrope_input_positions(self, input_tokens, mm_features):
        positions, _ = super().get_mrope_input_positions(input_tokens, mm_features)
        videos = [(offset, data) for offset, modality, data in self.iter_mm_features(mm_features)
                  if modality == "video" and data["use_audio_in_video"]]
        for offset, data in reversed(videos):  # the latest first: earlier offsets still hold
            _, media_tokens = self._compute_interleaved_positions(0, data)
            positions[:, offset + media_tokens + 1 :] -= 1  # <|vision_eos|> at <|audio_eos|>'s position
            positions[:, offset - 1 :] -= 1  # <|audio_bos|> at <|vision_bos|>'s, and everything after
        return positions, int(positions.max()) + 1 - len(input_tokens)
