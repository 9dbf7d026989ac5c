"""Operating-system differences, one small module each.

Only Linux runs in this project's CI; the macOS and Windows branches follow each platform's
documented behaviour and are marked "untested here" where they differ.
"""
