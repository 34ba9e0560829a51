"""The sandbox: a local Assistants-v2-compatible API server with deterministic scripted agents."""
