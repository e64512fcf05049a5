"""The built-in specs (the zoo): they ship inside the package (`cnnstat.zoo_specs`), so
they load from any directory after a plain `pip install`."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from cnnstat.ir import Graph
from cnnstat.spec.loader import load_spec


@lru_cache(maxsize=1)  # importlib.resources answers in ~40 us, once per zoo spec loaded
def zoo_dir() -> Path:
    return Path(str(resources.files("cnnstat.zoo_specs")))


@lru_cache(maxsize=1)
def zoo_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in zoo_dir().glob("*.yaml")))


@lru_cache(maxsize=256)
def load_zoo(name: str) -> Graph:
    return load_spec(zoo_dir() / f"{name}.yaml", shown_as=f"specs/{name}.yaml")
