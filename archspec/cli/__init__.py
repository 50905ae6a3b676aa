"""The `archspec` command line."""

from archspec.cli.app import app, main

__all__ = ["app", "main"]
