"""The code file of the registered pyfunc model (MLflow's "models from code"): MLflow runs it when loading the model,
instead of unpickling a Python object. It names the model class; the class lives in :mod:`sketchseg.tracking.pyfunc`,
and the sketchseg package travels with the model (``code_paths``)."""

import mlflow

from sketchseg.tracking.pyfunc import SketchsegPyfunc

mlflow.models.set_model(SketchsegPyfunc())
