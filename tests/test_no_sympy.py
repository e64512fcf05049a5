"""`cnnstat.frontends.nosympy`: the stand-in for torch's symbolic_shapes answers as the
real module does (issue 23).

Its answers are checked against the real functions of the torch installed, on plain values
(what a meta-tensor trace passes them, and the odd ones that raise) and on symbolic values
of a real ShapeEnv (which it must hand to the real functions). In fresh processes: a
question it does not answer gets the real module, imported then, and a trace leaves
nothing of the stand-ins behind. Counting with them is tests/test_no_dynamo.py's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch.fx.experimental import symbolic_shapes as real

from cnnstat.frontends import nosympy

BOOLS = [True, False]
PAIRS = [(2, 2), (2, 3), (True, 1), ((1, 2), (1, 2)), ((1, 2), [1, 2]), ((1, 2), (1, 2, 3)),
         ((), ()), (torch.Size([1, 3]), (1, 3)), (((1, 2), 3), ((1, 2), 3)),
         (((1, 2), 3), ((1, 4), 3)), ((1, (2,)), (1, 2)), (1.0, 1), ((1,), 1), ("a", "a")]


def _outcome(fn, *args):
    try:
        value = fn(*args)
    except Exception as e:  # noqa: BLE001 - the same exception type is the answer
        return type(e)
    return type(value), value


@pytest.mark.parametrize("name", sorted(nosympy._ANSWERS))
def test_every_answer_is_a_function_of_the_real_module(name):
    assert callable(getattr(real, name)) and not isinstance(getattr(real, name), type)


@pytest.mark.filterwarnings("ignore:guard_size_oblivious will be removed:FutureWarning")
@pytest.mark.parametrize("name", ["expect_true", "guard_or_false", "guard_or_true",
                                  "statically_known_true", "statically_known_false",
                                  "guard_bool", "guard_size_oblivious", "has_guarding_hint",
                                  "is_nested_int"])
def test_one_argument_answers_equal_the_real_ones(name):
    for value in [*BOOLS, 0, 1, 3, None, 1.5, torch.Size([2])]:
        ours, theirs = nosympy._ANSWERS[name], getattr(real, name)
        assert _outcome(ours, value) == _outcome(theirs, value), (name, value)


@pytest.mark.parametrize("name", ["sym_and", "sym_or"])
def test_many_argument_answers_equal_the_real_ones(name):
    ours, theirs = nosympy._ANSWERS[name], getattr(real, name)
    for args in [(True,), (False,), (True, False), (True, True, True), (False, True, False),
                 (1, True), (True, 0)]:
        assert _outcome(ours, *args) == _outcome(theirs, *args), (name, args)


def test_sym_eq_equals_the_real_one():
    for x, y in PAIRS + [(b, a) for a, b in PAIRS]:
        assert _outcome(nosympy.sym_eq, x, y) == _outcome(real.sym_eq, x, y), (x, y)


def test_symbolic_values_go_to_the_real_functions():
    env = real.ShapeEnv()
    s = env.create_unbacked_symint()
    for name in ("guard_or_false", "guard_or_true", "statically_known_true",
                 "statically_known_false", "has_guarding_hint"):
        ours, theirs = nosympy._ANSWERS[name], getattr(real, name)
        arg = s if name == "has_guarding_hint" else s == 3
        assert ours(arg) == theirs(arg), name
    assert nosympy.is_nested_int(s) is real.is_nested_int(s) is False
    assert nosympy.sym_and(s == 3, True) is not True  # a SymBool, from the real one
    assert str(nosympy.sym_eq((s, 2), (s, 2))) == str(real.sym_eq((s, 2), (s, 2)))


def _fresh(code: str) -> str:
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                           text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    return child.stdout.strip().splitlines()[-1]


def test_a_question_it_does_not_answer_gets_the_real_module():
    assert _fresh("""
        import sys
        import torch
        from cnnstat.frontends.nosympy import no_sympy_import
        name = "torch.fx.experimental.symbolic_shapes"
        with no_sympy_import():
            import sympy
            assert "sympy" in sys.modules and not isinstance(1, sympy.Basic)
            torch._check(True)
            assert name in sys.modules and "Integer" not in vars(sympy)
            from torch.fx.experimental.symbolic_shapes import ShapeEnv, guard_or_false
            assert type(sys.modules[name]).__name__ == "module"  # the real one now
            assert isinstance(sympy.Integer(3), sympy.Basic)  # the stand-in defers too
            assert sympy.Basic is sys.modules["sympy"].Basic
            assert guard_or_false(ShapeEnv().create_unbacked_symint() == 2) is False
        assert type(sys.modules[name]).__name__ == "module"
        print("ok")
    """) == "ok"


def test_a_trace_leaves_no_stand_in():
    assert _fresh("""
        import sys
        import torch
        from torch import nn
        from cnnstat.frontends import graph_from_module
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        graph_from_module(net, (3, 8, 8))
        name = "torch.fx.experimental.symbolic_shapes"
        assert name not in sys.modules and "sympy" not in sys.modules
        assert "symbolic_shapes" not in vars(torch.fx.experimental)
        import sympy
        from torch.fx.experimental.symbolic_shapes import ShapeEnv
        assert isinstance(sympy.Symbol("x"), sympy.Basic)
        assert torch.fx.experimental.symbolic_shapes.ShapeEnv is ShapeEnv
        print(torch.compile(lambda v: v * 2, backend="eager")(torch.ones(2)).tolist())
    """) == "[2.0, 2.0]"
