"""Prefect flows of sketchseg. ``flows.train_flow.train_flow`` is the training pipeline; ``python -m flows serve``
serves it as the deployment ``train-flow/default``.

Importing this package switches Prefect's and MLflow's telemetry off (unless the environment already decides) and
attaches the ``sketchseg`` logger to Prefect's run logs; these settings are read when Prefect is imported.
"""

import os
import warnings

for _key, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "sketchseg",
    # library calls outside a flow run log locally, without a warning per record
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # the in-process (ephemeral) Prefect server starts in 4-11 s, but a busy machine needs more than the default 20
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # start-up chatter that means nothing to a user ("Starting temporary server ...", MLflow's "Creating initial MLflow
    # database tables", its artifact download bars) off; the flow's and tasks' own run logs stay at INFO
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}.items():
    os.environ.setdefault(_key, _value)

# Prefect validates parameters with a pydantic model whose base has a `register` attribute; the flow parameter of
# that name works, only the warning is noise.
warnings.filterwarnings("ignore", message=r'Field name "register" in "Train_FlowModel"', category=UserWarning)
