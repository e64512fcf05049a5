"""The torch frontend never imports `torch._dynamo` nor sympy (issue 23), and counts the same.

torch 2.13 imports `torch._dynamo` (1-2 s, ~40 MiB) at the first meta op or dispatch mode,
and `torch.fx.experimental.symbolic_shapes` with sympy (~0.5 s) at the first `torch._check`
of a meta kernel; `cnnstat.frontends.nodynamo` and `.nosympy` stand in for them while a
module is traced. A fresh process traces modules covering every op that carries MACs
(convolution, transposed and grouped convolution, addmm, mm, bmm, baddbmm, matmul, scaled
dot-product attention) and batch norm, broadcasting and attention's shape checks, through
fx and through the recorded-forward fallback; its per-layer MACs and output shapes must
equal, op by op, what the same trace gives here with the real modules loaded, and the fx
trace's total torch's FlopCounterMode / 2 on meta tensors.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import torch
from torch.utils.flop_counter import FlopCounterMode

MODULES = textwrap.dedent("""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Ops(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
            self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(64, 16)
            self.w = nn.Parameter(torch.empty(16, 16))
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x):
            x = F.relu(self.bn(self.up(self.grouped(self.conv(x)))))  # 1x4x16x16
            t = x.flatten(2)  # 1x4x256
            t = self.fc(t.reshape(1, 16, 64))  # addmm
            t = torch.mm(t[0], self.w)[None] + torch.bmm(t, t.transpose(1, 2)) @ t
            t = torch.baddbmm(t, t, t.transpose(1, 2))
            a = F.scaled_dot_product_attention(t[:, None], t[:, None], t[:, None])
            return self.attn(a[:, 0], t, t)[0].sum(1)

    class Branchy(Ops):  # fx cannot trace a branch on a value: the recorded fallback
        def forward(self, x):
            y = super().forward(x)
            return y * 2 if bool(y.sum() > 0) else y

    def per_layer(cls):
        import cnnstat.frontends.nodynamo  # noqa: F401 - what is under test, loaded alike
        from cnnstat.analyzers import analyze_graph
        from cnnstat.frontends import graph_from_module
        torch.manual_seed(0)
        traced = graph_from_module(cls(), (3, 8, 8))
        report = analyze_graph(traced.graph)
        return {"method": traced.method, "macs": report.totals.macs,
                "layers": {row.name: [row.macs, list(row.output_shape)]
                           for row in report.layers}}
""")

STOOD_IN = ("torch._dynamo", "torch.fx.experimental.symbolic_shapes", "sympy")
CHILD = f"STOOD_IN = {STOOD_IN!r}" + MODULES + textwrap.dedent("""
    import json, sys
    out = {name: per_layer(cls) for name, cls in (("ops", Ops), ("branchy", Branchy))}
    out["imported"] = [name for name in STOOD_IN if name in sys.modules]
    print(json.dumps(out))
""")


def _here() -> dict:
    import torch._dynamo  # noqa: F401 - the real one, as any compiling process has it
    import torch.fx.experimental.symbolic_shapes  # noqa: F401 - and the real sympy

    space: dict = {}
    exec(compile(MODULES, "<modules>", "exec"), space)
    return space


def test_fresh_process_never_imports_dynamo_or_sympy_and_counts_the_same():
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           check=True)
    got = json.loads(child.stdout.strip().splitlines()[-1])
    assert got["imported"] == []
    space = _here()
    for name, cls in (("ops", space["Ops"]), ("branchy", space["Branchy"])):
        assert got[name] == space["per_layer"](cls), name
    counter = FlopCounterMode(display=False)  # on meta, as traced (Branchy reads a value)
    with counter, torch.no_grad():
        space["Ops"]().eval().to("meta")(torch.empty(1, 3, 8, 8, device="meta"))
    assert 2 * got["ops"]["macs"] == counter.get_total_flops()
    assert "fx" in got["ops"]["method"] and "hooks" in got["branchy"]["method"]


def test_stand_in_leaves_no_trace():
    """After a trace, a process that compiles gets the real torch._dynamo: the stand-in
    is gone and no torch function keeps the answer it gave."""
    code = MODULES + textwrap.dedent("""
        import sys
        per_layer(Ops)
        assert "torch._dynamo" not in sys.modules and "_dynamo" not in vars(torch)
        import torch._dynamo
        assert hasattr(torch._dynamo, "optimize")
        print(torch.compile(lambda v: v + 1, backend="eager")(torch.ones(2)).tolist())
    """)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip().splitlines()[-1] == "[2.0, 2.0]"
