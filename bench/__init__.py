"""Benchmarks: figures measured next to ceilings taken in the same run."""
