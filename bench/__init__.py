"""Benchmarks of PRODUCT.md §5: printed figures from the real stack, never timed tests. `python -m bench`."""
