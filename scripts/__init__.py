"""The repository's scripts (generate, local_stack): each runs as a file, and benchmarks and tests import them."""
