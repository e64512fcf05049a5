import os

# Deterministic rendering for golden tests: no colour, fixed width.
os.environ.setdefault("NO_COLOR", "1")
os.environ.setdefault("COLUMNS", "160")
