"""The Textual app: everything that imports Textual lives under this package."""
