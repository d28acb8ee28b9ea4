"""GRPO and SFT training of the audio-visual student: rewards, objective and trainers."""
