"""What the test suites share: event tables, readers of expositions, processes, a store harness.

Fixtures stay in ``conftest.py``; everything else a test imports from here.
"""
