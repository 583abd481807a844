"""A third-party model, as an installed package would ship one: it registers through the
`kgctl.models` entry point group (see the dist-info beside it) and only where this folder is on
the path. CAL with the reference's half transform, whose predictions can keep only scores above
a bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc
from torch import nn

from kgctl.core.options import Option, setting
from kgctl.models.base import Prediction
from kgctl.models.cal import CAL
from kgctl.models.cal.config import TRANSFORMS, CALConfig
from kgctl.models.runs import Run


@dataclass
class HalfCALConfig(CALConfig):
    transform: str = setting("half", "The reference's half transform by default.", TRANSFORMS)


class HalfCAL(CAL):
    name = "cal_half"
    description = "CAL with the reference's half transform; predictions above a score bound."
    config_class = HalfCALConfig
    predict_options = (
        *CAL.predict_options,
        Option("min-score", "Keep predictions scoring at least this.", float),
    )

    def predict(self, run: Run, inputs: Any, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        prediction = super().predict(run, inputs, module, options, device)
        if prediction.edges is not None and options.get("min_score") is not None:
            keep = pc.greater_equal(prediction.edges.column("score"), options["min_score"])
            prediction.edges = prediction.edges.filter(keep)
            prediction.facts["rows"] = prediction.edges.num_rows
        return prediction
