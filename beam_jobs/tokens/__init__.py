"""Tokenizers: the `Tokenizer` interface, its implementations, and their registry."""
