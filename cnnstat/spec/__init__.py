"""The YAML spec frontend: located YAML, a safe evaluator, and the expander to a Graph."""

from cnnstat.spec.loader import build_graph, load_spec

__all__ = ["build_graph", "load_spec"]
