"""sandbox_seed: demo assistants, threads and runs."""
