"""Conversation states: a customer turn stored with the answer engine's decision, hand-off, agent
replies, resolution."""
