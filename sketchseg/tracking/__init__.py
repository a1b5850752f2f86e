"""MLflow: the tracking store, training runs, the registered pyfunc model and its ``champion`` alias.

- :mod:`sketchseg.tracking.store`: which store (``MLFLOW_TRACKING_URI`` or ``./mlflow.db``), clients, experiments;
- :mod:`sketchseg.tracking.runs`: one training run logged as an MLflow run (params, metrics, artifacts);
- :mod:`sketchseg.tracking.pyfunc`: the pyfunc model ``sketchseg`` (its input, output and bundled code);
- :mod:`sketchseg.tracking.registry`: registered versions, what their test figure was measured on, and the alias
  ``champion``.

The tables the pipeline derives from a training folder live beside evaluation (:mod:`sketchseg.eval.selection`,
:mod:`sketchseg.eval.tables`), the caption statistics beside data (:mod:`sketchseg.data.caption_stats`).
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # read when mlflow is imported, by any submodule

