"""The JSON writer's rows (report/export.py writes each row from a template and splices
each receptive field's text, encoded once, into the rows that share it) parse to exactly
the report's own dict form, and are, character for character, what json's own encoder
writes for it."""

import dataclasses
import json

import pytest

import cnnstat
from cnnstat.report.export import to_json

# Plain convolution chains, squeeze-and-excitation gates (fields with a "local" path),
# upsampling heads, branches and concatenations.
MODELS = ["vgg16", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "fcn_resnet50",
          "inception_v3", "densenet121"]


def _reference(report, extra=None) -> str:
    """The layout to_json promises, written with json.dumps alone: the document indented,
    each row's dict compact on its own line."""
    doc = {**report.to_dict(layers=False), **(extra or {}), "layers": "ROWS"}
    rows = ",\n    ".join(json.dumps(row.to_dict(report.dtype_bytes)) for row in report.layers)
    return json.dumps(doc, indent=2).replace('"ROWS"', f"[\n    {rows}\n  ]")


def _replaced(record, **changes):
    """A row or report with `changes`, built anew (so its own checks run)."""
    fields = {f: getattr(record, f) for f in record.__dataclass_fields__}
    return type(record)(**{**fields, **changes})


@pytest.mark.parametrize("name", MODELS)
def test_json_text_is_json_dumps_own(name):
    report = cnnstat.analyze(name, batch=2, dtype="fp16")
    assert to_json(report, {"notes": []}) == _reference(report, {"notes": []})


def test_rows_with_optional_keys_odd_values_and_no_field_are_json_dumps_own():
    """Rows the template does not cover (train-only, frozen, per-region, unsupported, a
    non-int count, a str subclass, non-ASCII names, counts not made) are encoded as json
    does; every other row is still the template's."""

    class Name(str):
        pass

    report = cnnstat.analyze("resnet18")
    rows = list(report.layers)
    odd = [_replaced(rows[0], train_only=True, macs=0, other_ops=0, activations=0),
           _replaced(rows[1], non_trainable_params=3),
           _replaced(rows[2], regions=2), _replaced(rows[3], unsupported=("ops",)),
           _replaced(rows[4], macs=None, other_ops=None, params=None, buffers=None),
           _replaced(rows[5], name=Name("é\"\\\n\x00"), inputs=("ü", "a/b")),
           _replaced(rows[6], receptive_field=None), _replaced(rows[7], formula=Name("k"))]
    layers = odd + rows[8:]
    # the report checks its totals against its rows: they follow the rows' changes
    inference = [r for r in layers if not r.train_only]
    params = sum(r.params or 0 for r in layers)
    totals = dataclasses.replace(
        report.totals, params=params,
        trainable_params=params - sum(r.non_trainable_params for r in layers),
        macs=sum(r.macs or 0 for r in inference),
        other_ops=sum(r.other_ops or 0 for r in inference),
        activations=sum(r.activations for r in inference))
    report = _replaced(report, totals=totals, layers=tuple(layers))
    assert to_json(report) == _reference(report)
    assert json.loads(to_json(report))["layers"][5]["name"] == "é\"\\\n\x00"


def test_a_float_count_is_written_as_json_writes_it():
    """The template writes ints; a float (which no analyzer makes) goes to json."""
    report = cnnstat.analyze("vgg16")
    first = report.layers[0]
    odd = _replaced(first, output_shape=(1, 64.0, 224, 224))
    report = _replaced(report, layers=(odd, *report.layers[1:]))
    assert to_json(report) == _reference(report)
    assert '"output_shape": [1, 64.0, 224, 224]' in to_json(report)


def test_a_model_named_like_the_writers_marker_still_encodes_exactly():
    report = _replaced(cnnstat.analyze("vgg16"), model="\x00layers")
    assert to_json(report) == _reference(report)


@pytest.mark.parametrize("name", MODELS)
def test_json_rows_equal_the_reports_dict(name):
    report = cnnstat.analyze(name)
    expected = {**report.to_dict(), "notes": []}
    assert json.loads(to_json(report, {"notes": []})) == expected


def test_a_name_holding_the_writers_marker_still_encodes_exactly():
    report = cnnstat.analyze("vgg16")
    first = report.layers[0]
    odd = _replaced(first, name="\x00rf")
    report = _replaced(report, layers=(odd, *report.layers[1:]))
    assert json.loads(to_json(report))["layers"] == report.to_dict()["layers"]
