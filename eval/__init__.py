"""Evaluation gates, score history and promotion of reviewer checkpoints."""
