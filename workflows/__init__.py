"""Deterministic workflow code only: no I/O, no clocks, no randomness outside the SDK's.

Nothing is imported here: the workflow sandbox imports this file again for every workflow it runs (see
workflows/registry.py for the list of every workflow type)."""
