"""Corpus preparation for language-model pretraining on Apache Beam."""

SCHEMA_VERSION = 1
