"""Renamed `cnnstat.resolver` (the MODEL resolver it is). This name stays for code
written against it."""

from cnnstat.resolver import (
    FAMILY_ALIASES,
    Resolved,
    aliases,
    load_zoo,
    resolve,
    safe_resolve,
    zoo_dir,
    zoo_names,
)

__all__ = ["FAMILY_ALIASES", "Resolved", "aliases", "load_zoo", "resolve", "safe_resolve",
           "zoo_dir", "zoo_names"]
