"""cnnstat: exact, honest numbers about convolutional networks.

    >>> import cnnstat
    >>> report = cnnstat.analyze("vgg16")
    >>> report.totals.params
    138357544

Importing cnnstat never imports torch; only building modules (tests, timing) does.
"""

from cnnstat.analyzers import ModelReport
from cnnstat.api import analyze
from cnnstat.errors import CnnstatError

__version__ = "0.1.0"
__all__ = ["CnnstatError", "ModelReport", "__version__", "analyze"]
