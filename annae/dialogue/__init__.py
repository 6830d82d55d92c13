"""The answer / clarify / hand-off policy and conversation states."""
