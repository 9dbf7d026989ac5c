"""API tests that need the real model share the embed tests' session fixture."""

from tests.embed.conftest import model_files

__all__ = ["model_files"]
