"""Telling people when a run needs them: outgoing webhooks (and, wired by the live layer, their triggers)."""
