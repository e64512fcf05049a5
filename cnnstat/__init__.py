"""cnnstat: exact, honest numbers about convolutional networks.

    >>> import cnnstat
    >>> report = cnnstat.analyze("vgg16")
    >>> report.totals.params
    138357544

Importing cnnstat never imports torch; only building modules (tests, timing) does.
The public names load lazily, so `cnnstat --version` and the CLI start fast.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "analyze": "cnnstat.api",
    "check": "cnnstat.budget",
    "ModelReport": "cnnstat.analyzers",
    "CnnstatError": "cnnstat.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnstat' has no attribute {name!r}")
    return getattr(import_module(module), name)
