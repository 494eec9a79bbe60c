"""Corpus sources: each turns a data config into a RawCorpus (or id streams)."""
