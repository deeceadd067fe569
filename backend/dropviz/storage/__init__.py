"""Persistent runs: the SQLite run index, step files, checkpoints and archives."""
