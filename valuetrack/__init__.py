"""valuetrack: what each of your deployed ML models is worth."""

from __future__ import annotations

__version__ = "0.1.0"
