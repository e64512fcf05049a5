"""An `nn.Module` -> a Graph, without the memory to run it.

1. `torch.fx` symbolic tracing, keeping whole the modules that fx keeps whole by default
   (those of torch.nn) and every module a converter knows. Node names are the module
   paths of `named_modules()` (`layer3.1.conv2`); a function call is named after the
   module whose forward made it (`layer3.1.add`); a module called again gets torch's
   `@1` suffix.
2. One forward on meta tensors through the traced graph (`functional_call` with meta
   copies of every parameter and buffer, so the user's module is left as it was) gives
   each node's output shape, and torch's FLOP formulas count each node on the way
   (`counting.FlopCount`, FlopCounterMode's counts without its per-module bookkeeping).
3. When fx cannot trace (control flow on values or shapes), the forward is run once with
   module hooks and a TorchFunctionMode recording what ran (`eager.py`), on meta tensors,
   or, if the forward reads tensor values, on real tensors for small models. The report's
   diagnostics say which method was used.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from cnnstat.errors import AnalysisError, Location
from cnnstat.frontends.assemble import Assembler, Step
from cnnstat.frontends.converters import (
    Call,
    canonical_op,
    module_converter,
    op_label,
    pads_itself,
)
from cnnstat.frontends.counting import MISSING_FORMULAS, FlopCount
from cnnstat.frontends.eager import Recorder, is_leaf
from cnnstat.frontends.nodynamo import no_dynamo_import
from cnnstat.frontends.nosympy import no_sympy_import
from cnnstat.frontends.shortcuts import batch_norm_output
from cnnstat.ir import Graph, ModelMeta

# The real-tensor fallback materialises the weights: only for models this small.
REAL_FALLBACK_MAX_ELEMENTS = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Traced:
    graph: Graph
    method: str
    diagnostics: tuple[str, ...]


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return not pads_itself(m) and (module_converter(m) is not None or is_leaf(m))


class _Runner(fx.Interpreter):
    """Keeps every value and torch's FLOP count of each node."""

    def __init__(self, gm: fx.GraphModule, counter: FlopCount):
        super().__init__(gm, garbage_collect_values=False)
        self.counter = counter
        self.flops: dict[fx.Node, int] = {}

    def run_node(self, n: fx.Node):
        before = self.counter.total_flops
        out = super().run_node(n)
        self.flops[n] = self.counter.total_flops - before
        return out

    def call_module(self, target, args, kwargs):
        out = batch_norm_output(self.fetch_attr(target), args, kwargs)  # no meta kernel
        return super().call_module(target, args, kwargs) if out is None else out


class _Host(nn.Module):
    """Lets functional_call swap the state of `inner` while `run` executes."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, run, *args):
        return run(self.inner, *args)


def state_copy(module: nn.Module, device: str, *, zeros: bool = False) -> dict[str, torch.Tensor]:
    """Stand-ins for every parameter and buffer: free on meta, zero-filled when real."""
    state = {}
    for name, t in [*module.named_parameters(), *module.named_buffers()]:
        state[name] = (torch.zeros if zeros else torch.empty)(t.shape, dtype=t.dtype,
                                                              device=device)
    return state


def with_state(module: nn.Module, state: dict[str, torch.Tensor], run, *args):
    host = _Host(module)
    prefixed = {f"inner.{k}": v for k, v in state.items()}
    with torch.no_grad():
        return torch.func.functional_call(host, prefixed, (run, *args), strict=False)


def trace_module(module: nn.Module, input_chw: tuple[int, ...], *, name: str,
                 source: str, meta: dict | None = None,
                 more_inputs: tuple[tuple[int, ...], ...] = ()) -> Traced:
    """Trace `module` at input (1, *input_chw) into a Graph; raises AnalysisError when
    neither fx nor a recorded forward works. `more_inputs`: the shapes of the forward's
    further tensor arguments (RAFT's second frame), batch 1 too."""
    was_training = module.training
    module.eval()  # the graph of inference: dropout off, BN on running stats, no aux heads
    info = ModelMeta(name=name, source=source, input=tuple(input_chw), **(meta or {}))
    try:
        with no_dynamo_import(), no_sympy_import():
            return _trace(module, (tuple(input_chw), *map(tuple, more_inputs)), info, source)
    finally:
        module.train(was_training)


def _trace(module: nn.Module, inputs: tuple[tuple[int, ...], ...], info: ModelMeta,
           source: str) -> Traced:
    notes: list[str] = []
    try:
        gm = _Tracer().trace(module)
        graph_module = fx.GraphModule(module, gm, type(module).__name__)
    except Exception as e:  # noqa: BLE001 - user code: any failure means "fall back"
        notes.append(f"torch.fx could not trace the forward ({_reason(e)}); recorded one "
                     "forward with module hooks instead")
    else:
        try:
            asm = _fx_run(graph_module, module, inputs, source)
            traced = _done(asm, info, "torch.fx symbolic trace, meta-tensor propagation", notes)
            return _with_training_branches(module, inputs, info, source, traced) \
                if asm.unused else traced
        except AnalysisError:
            raise
        except Exception as e:  # noqa: BLE001
            notes.append(f"the fx-traced graph failed on meta tensors ({_reason(e)}); "
                         "recorded one forward with module hooks instead")
    try:
        asm = _eager_run(module, inputs, source, device="meta")
        return _done(asm, info, "module hooks on meta tensors (fx fallback)", notes)
    except AnalysisError:
        raise
    except Exception as e:  # noqa: BLE001
        meta_error = e
    size = sum(t.numel() for t in [*module.parameters(), *module.buffers()])
    if size > REAL_FALLBACK_MAX_ELEMENTS:
        raise AnalysisError(f"the forward could not run on meta tensors ({_reason(meta_error)})"
                            f" and the model is too large to run for real ({size:,} elements)",
                            Location(source))
    notes.append(f"the forward could not run on meta tensors ({_reason(meta_error)}); ran it "
                 "on real tensors (zero weights, random input): the graph is the path this "
                 "input took")
    try:
        asm = _eager_run(module, inputs, source, device="cpu")
    except Exception as e:  # noqa: BLE001
        raise AnalysisError(f"running the forward failed: {_reason(e)}", Location(source)) \
            from e
    return _done(asm, info, "module hooks on real tensors (fx and meta fallbacks failed)", notes)


def _with_training_branches(module: nn.Module, inputs: tuple[tuple[int, ...], ...],
                            info: ModelMeta, source: str, traced: Traced) -> Traced:
    """Modules the eval forward never calls (Inception's AuxLogits) are often called by
    the training forward, as an extra output. Then the graph is the training one with
    those outputs as aux outputs (their layers in params, not in inference cost), as the
    zoo's Inception spec has them; else the eval graph, the unused parameters named."""
    module.train()
    for sub in module.modules():  # batch statistics of one image at 1x1 would fail
        if isinstance(sub, nn.modules.batchnorm._NormBase):
            sub.eval()
    try:
        gm = fx.GraphModule(module, _Tracer().trace(module), type(module).__name__)
        asm = _fx_run(gm, module, inputs, source)
        train = asm.finish(asm.output_keys, info)
    except Exception:  # noqa: BLE001 - user code: the eval graph stands
        return traced
    finally:
        module.eval()
    evaluated = traced.graph
    same = all(n.name in train and train.node(n.name) == n for n in evaluated.nodes)
    aux = tuple(o for o in train.outputs if o not in evaluated.outputs)
    if not same or not aux:
        return traced
    graph = Graph(nodes=train.nodes, outputs=evaluated.outputs, meta=info, aux_outputs=aux)
    if len(graph.inference_graph()) != len(evaluated):
        return traced  # the training forward runs other layers on the way: not an aux head
    kept = [d for d in traced.diagnostics if "never called" not in d]
    note = (f"the training-mode forward also returns {', '.join(aux)}: the layers only they "
            "need are training-only aux outputs (in params, not in the inference cost)")
    still = [d for d in asm.diagnostics if "never called" in d]  # not even in training
    return Traced(graph=graph, method=traced.method, diagnostics=(*kept, note, *still))


def _done(asm: Assembler, info: ModelMeta, method: str, notes: list[str]) -> Traced:
    graph = asm.finish(asm.output_keys, info)
    diagnostics = (f"traced by {method}", *notes, *asm.diagnostics)
    return Traced(graph=graph, method=method, diagnostics=tuple(diagnostics))


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


# --- fx -----------------------------------------------------------------------------------

def _fx_run(gm: fx.GraphModule, module: nn.Module, inputs: tuple[tuple[int, ...], ...],
            source: str) -> Assembler:
    state = state_copy(gm, "meta")
    for node in gm.graph.nodes:  # tensor constants fx lifted out of the forward
        if node.op == "get_attr" and node.target not in state:
            value = _attr(gm, node.target)
            if isinstance(value, torch.Tensor):
                state[node.target] = torch.empty_like(value, device="meta")
    counter = FlopCount()

    def run(inner: fx.GraphModule, *xs: torch.Tensor) -> _Runner:
        runner = _Runner(inner, counter)
        with counter, torch.device("meta"):
            runner.run(*xs)
        return runner

    xs = [torch.empty(1, *shape, device="meta") for shape in inputs]
    runner = with_state(gm, state, run, *xs)
    return _fx_steps(gm, module, runner, source)


def _attr(gm: fx.GraphModule, target: str):
    value = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _fx_steps(gm: fx.GraphModule, module: nn.Module, runner: _Runner,
              source: str) -> Assembler:
    asm = Assembler(gm, source, module)
    env = runner.env
    for node in gm.graph.nodes:
        value = env.get(node)
        if node.op == "placeholder":
            if isinstance(value, torch.Tensor):
                asm.input(node, value, node.name)
        elif node.op == "get_attr":
            asm.constant(node, node.target)
        elif node.op == "output":
            asm.output_keys = _returned(node.args[0])
        elif _is_container(node):
            continue  # a namedtuple of outputs (Inception's InceptionOutputs in training)
        elif _is_element(node, env):  # spx[-1] is element len - 1
            asm.alias(node, (node.args[0], node.args[1] % len(env[node.args[0]])))
        else:
            asm.step(_fx_step(gm, node, env, runner.flops.get(node, 0)))
    return asm


def _is_container(node: fx.Node) -> bool:
    return node.op == "call_function" and isinstance(node.target, type) \
        and issubclass(node.target, tuple)


def _returned(value) -> list[fx.Node]:
    """The nodes a forward returns, through namedtuples built of them."""
    nodes = []
    for leaf in tree_leaves(value):
        if isinstance(leaf, fx.Node) and _is_container(leaf):
            nodes += _returned((leaf.args, leaf.kwargs))
        elif isinstance(leaf, fx.Node):
            nodes.append(leaf)
    return nodes


def _is_element(node: fx.Node, env: dict) -> bool:
    """`getitem(t, i)` on the tuple a call returned (torch.split, a module's outputs)."""
    return (node.op == "call_function" and node.target is operator.getitem
            and isinstance(node.args[0], fx.Node) and isinstance(node.args[1], int)
            and isinstance(env.get(node.args[0]), tuple | list))


def _fx_step(gm: fx.GraphModule, node: fx.Node, env: dict, flops: int) -> Step:
    keys: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), keys.append)
    args = fx.node.map_arg(node.args, env.__getitem__)
    kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
    value = env[node]
    elements = tuple((node, i) for i in range(len(value))) \
        if isinstance(value, tuple | list) else ()
    path, op, label = None, "", ""
    if node.op == "call_module":
        path, label = node.target, op_label(gm.get_submodule(node.target))
    else:
        op, label = canonical_op(node.target) or "", op_label(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    scope = list(stack.values())[-1][0] if stack else ""
    return Step(key=node, call=Call(op=op, args=tuple(args), kwargs=dict(kwargs), out=value),
                label=label, scope=scope if isinstance(scope, str) else "",
                arg_keys=tuple(keys), flops=flops, module_path=path, element_keys=elements)


# --- the recorded forward -----------------------------------------------------------------

def input_names(module: nn.Module, count: int) -> list[str]:
    """The names of the forward's first `count` arguments (`image1`, `image2`)."""
    import inspect

    try:
        names = [p.name for p in inspect.signature(module.forward).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"input{i}" for i in range(count)]


def _eager_run(module: nn.Module, inputs: tuple[tuple[int, ...], ...], source: str,
               device: str) -> Assembler:
    state = state_copy(module, device, zeros=device != "meta")
    names = {id(t): n for n, t in state.items()}
    counter = FlopCounterMode(display=False, custom_mapping=MISSING_FORMULAS)
    recorder = Recorder(module, names, counter)
    xs = [torch.randn(1, *shape) if device != "meta" else
          torch.empty(1, *shape, device="meta") for shape in inputs]
    keys = [recorder.track_input(x) for x in xs]

    def run(inner: nn.Module, *xs: torch.Tensor):
        recorder.attach()
        try:
            with counter, recorder, torch.device(device):
                return inner(*xs)
        finally:
            recorder.detach()

    out = with_state(module, state, run, *xs)
    asm = Assembler(module, source)
    for key, x, name in zip(keys, xs, input_names(module, len(xs)), strict=True):
        asm.input(key, x, name)
    for step in recorder.steps:
        asm.step(step)
    asm.output_keys = [id(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    return asm
