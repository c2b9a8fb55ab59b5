"""Policies for the compact GRPO: MLPs for classic control, action scoring for text envs."""
