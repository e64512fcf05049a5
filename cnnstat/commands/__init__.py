"""CLI commands, one module per command family; each attaches to `app`."""
