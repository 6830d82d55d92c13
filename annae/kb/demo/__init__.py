"""The bundled demo knowledge base: the Annae Gift Shop FAQ in English and Korean."""

from __future__ import annotations

from pathlib import Path

DEMO_FILE = "giftshop.json"


def demo_path() -> Path:
    """Path of the demo KB (the JSON format that ``annae kb import`` reads)."""
    return Path(__file__).with_name(DEMO_FILE)
