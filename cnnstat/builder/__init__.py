"""Graph -> torch.nn.Module. Importing this package imports torch; nothing on the
YAML/zoo path may import it (tests/test_no_torch.py guards that)."""

# Importing these registers their kinds' modules.
from cnnstat.builder import arith_modules, index_modules, tensor_modules, window_modules  # noqa: F401
from cnnstat.builder.torch_module import GraphModule, build_module

__all__ = ["GraphModule", "build_module"]
