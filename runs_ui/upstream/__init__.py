"""The client boundary: the only code that speaks HTTP to an Assistants-style upstream."""
