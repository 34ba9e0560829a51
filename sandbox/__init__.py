"""The sandbox: a local API (Assistants v2, Responses + Conversations) with deterministic scripted agents."""
