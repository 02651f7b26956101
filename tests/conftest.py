"""Shared test setup.

This file's directory goes on ``sys.path`` when pytest loads it (rootdir-relative
"prepend" imports), which is what lets test modules import the shared helpers next to
it (``strategies``, ``support``).
"""
