"""How a layer kind that is one `torch.nn` module says so, as text (the IR never imports
torch): `torch_module = TorchModule("Conv2d", sized={"in_channels": 1})` on the class.

From that alone the builder makes the module and the torch frontend converts it back to
the kind (cnnstat/builder/torch_module.py, cnnstat/frontends/declared.py), so such a kind
has no code of its own in either place. It holds when the kind's fields are named as the
module's constructor arguments and kept as attributes of the same names, as torch's own
modules do (`kernel_size`, `stride`, `eps`, `bias`, ...):

- built as `nn.<name>(**sized, **every field)`, each `sized` argument taking the input's
  size at that dim (`in_channels`: 1, `in_features`: -1);
- converted from `nn.<name>` and the modules in `also`, each field read from the module's
  attribute of its name the way the spec reads that field's type (`3` -> `(3, 3)`,
  `"valid"` -> zeros, a bias tensor -> True, None -> False for a bool), those in
  `from_output` from the output's trailing sizes (an adaptive pool's `output_size`, whose
  None entries mean "the input's");
- `requires`: attributes (or function arguments) the kind stands for only at that value
  (`return_indices: False`); another value keeps the call opaque, counted by torch;
- `function`: the arguments after the input of the torch function named like the kind
  (`F.max_pool2d(x, kernel_size, stride, ...)`), which then converts too. A kind without
  fields converts its function (`F.relu`, `torch.sigmoid`) wherever torch has one.

A kind whose torch side is anything else (a functional call, several ops, a module of
cnnstat's own) has its builder and converter written out, registered by hand.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from cnnstat.ir.record import Record, record


@record(kw_only=False)
class TorchModule(Record):
    name: str
    sized: dict[str, int] = field(default_factory=dict)
    requires: dict[str, Any] = field(default_factory=dict)
    from_output: tuple[str, ...] = ()
    function: tuple[str, ...] | None = None
    also: tuple[str, ...] = ()
