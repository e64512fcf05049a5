"""The built-in specs (the zoo): they ship inside the package (`cnnstat.zoo_specs`), so
they load from any directory after a plain `pip install`."""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from cnnstat.ir import Graph
from cnnstat.spec.loader import load_spec


@lru_cache(maxsize=1)
def zoo_dir() -> Path:
    """The installed zoo's folder. The package's own import spec says where it is (also in
    an editable install); importlib.resources would say the same but imports zipfile,
    tempfile and random (~15 ms of every start)."""
    return Path(find_spec("cnnstat.zoo_specs").origin).parent  # type: ignore[union-attr, arg-type]


@lru_cache(maxsize=1)
def zoo_names() -> tuple[str, ...]:
    # listdir, not glob: glob compiles its pattern into a regex, a millisecond of each start
    return tuple(sorted(n[:-5] for n in os.listdir(zoo_dir()) if n.endswith(".yaml")))


@lru_cache(maxsize=256)
def load_zoo(name: str) -> Graph:
    return load_spec(zoo_dir() / f"{name}.yaml", shown_as=f"specs/{name}.yaml")
