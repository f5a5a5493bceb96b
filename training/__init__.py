"""Curated examples to JSONL, repo scanning, and LoRA training."""
