"""Annae (안내): a self-hosted contact-center assistant."""

__version__ = "0.1.0"
