"""The host the harness runs on: its file locations, atomic writes, caches, the page cache
and what of the model's files it holds."""
