"""`transformers.Trainer` with a resume that restores the weights of every student family.

transformers 5 saves a model in its hub key layout (`save_pretrained(save_original_format=True)`:
Qwen2.5-Omni's thinker as ``thinker.model.layers...``) but `Trainer._load_from_checkpoint` loads
a checkpoint with a plain `load_state_dict(strict=False)`, so on resume no key matches and
training silently continues from the base weights. Here the weights are read back through
`from_pretrained`, which applies the key conversion, and loaded strictly. DeepSpeed restores its
own module states and PEFT its adapters, so those paths are left to the Trainer.
"""

from __future__ import annotations

import logging

from transformers import Trainer

log = logging.getLogger(__name__)


class ResumableTrainer(Trainer):
    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        from peft import PeftModel

        model = model if model is not None else self.model
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or isinstance(model, PeftModel):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(model.parameters()).dtype
        restored = type(model).from_pretrained(resume_from_checkpoint, dtype=dtype)
        model.load_state_dict(restored.state_dict(), strict=True)
        log.info("restored the weights of %s", resume_from_checkpoint)
