"""The package version, written once: pyproject.toml and the startup cache read it here."""

from __future__ import annotations

VERSION = "0.2.0"
