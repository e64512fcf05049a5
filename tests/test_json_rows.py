"""The JSON writer's rows (report/export.py splices each receptive field's text, encoded
once, into the rows that share it) parse to exactly the report's own dict form."""

import json

import pytest

import cnnstat
from cnnstat.report.export import to_json

# Plain convolution chains, squeeze-and-excitation gates (fields with a "local" path),
# upsampling heads, branches and concatenations.
MODELS = ["vgg16", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "fcn_resnet50",
          "inception_v3", "densenet121"]


@pytest.mark.parametrize("name", MODELS)
def test_json_rows_equal_the_reports_dict(name):
    report = cnnstat.analyze(name)
    expected = {**report.to_dict(), "notes": []}
    assert json.loads(to_json(report, {"notes": []})) == expected


def test_a_name_holding_the_writers_marker_still_encodes_exactly():
    report = cnnstat.analyze("vgg16")
    first = report.layers[0]
    odd = type(first)(**{**{f: getattr(first, f) for f in first.__dataclass_fields__},
                         "name": "\x00rf"})
    report = type(report)(**{**{f: getattr(report, f) for f in report.__dataclass_fields__},
                             "layers": (odd, *report.layers[1:])})
    assert json.loads(to_json(report))["layers"] == report.to_dict()["layers"]
