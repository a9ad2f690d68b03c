"""Tokenizer, tiny heterogeneous model zoo with cached pretraining, and the real-benchmark loader."""
