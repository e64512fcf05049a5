"""Rendering: results -> rich tables, JSON, CSV, Markdown. No counting happens here."""
