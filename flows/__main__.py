"""``python -m flows serve``: serve the deployment ``train-flow/default`` (needs a Prefect server: PREFECT_API_URL);
``python -m flows run``: run the flow once in this process (ephemeral Prefect, no server needed).

Either writes into its own run folder (``outputs/runs/<UTC time>-<flow run name>``, or ``--run-dir`` / the parameter
``run_dir``) and leaves ``train.out`` and ``eval.out`` as they are unless ``--publish`` (``publish=true``) asks for
them to be replaced by copies of the run's results at the end.

A user error (a misspelt parameter, a missing file, ...) ends it with one line, ``error: ...``, and exit code 2, as
`sketchseg` does; any other exception keeps its traceback.

    prefect server start --host 127.0.0.1 --port 4200
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows serve
    PREFECT_API_URL=http://127.0.0.1:4200/api prefect deployment run 'train-flow/default' --watch \\
        --param params=params.yaml --param publish=true
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sketchseg.cli import CommandParser, exit_code, one_line_user_errors

DESCRIPTION = "Run the Prefect train-flow once in this process, or serve it as the deployment train-flow/NAME."


def build_parser() -> CommandParser:
    parser = CommandParser(prog="python -m flows", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve the deployment train-flow/NAME until interrupted")
    serve.add_argument("--name", default="default", help="deployment name (default: default)")
    serve.add_argument("--limit", type=int, default=1, help="flow runs executed at once (default 1)")
    run = sub.add_parser("run", help="run train-flow once in this process")
    run.add_argument("--params", default="params.yaml", help="parameters file (default params.yaml)")
    run.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    run.add_argument("--nproc", type=int, default=None, help="training processes (default: train.nproc)")
    run.add_argument("--foundation", default=None, help="foundation CLIP folder (default: foundation.out if built)")
    run.add_argument("--no-register", action="store_true", help="log the MLflow run but register no model")
    run.add_argument("--experiment", default="sketchseg", help="MLflow experiment (default sketchseg)")
    run.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    run.add_argument("--run-dir", default=None,
                     help="the run's folder, for its train/ and eval/ (default: a new outputs/runs/TIME-NAME)")
    run.add_argument("--resume", action="store_true", help="continue the interrupted training of --run-dir")
    run.add_argument("--publish", action="store_true",
                     help="when done, replace train.out and eval.out (data/train, data/eval: the DVC outputs) by "
                          "copies of the run's train/ and eval/")  # fmt: skip
    return parser


def check_run(args: argparse.Namespace) -> None:
    """Raise the user errors that ``train_flow`` would raise as it starts (parameters, --resume without a run folder,
    run folder, foundation folder), before Prefect starts."""
    from flows.train_flow import check_run_dir
    from sketchseg.config import load_config, model_config_for
    from sketchseg.errors import ConfigError

    cfg = load_config(args.params, args.set)
    if args.resume and not args.run_dir:
        raise ConfigError(
            "--resume continues an earlier run's training: give that run's folder with --run-dir (its log names it: "
            "'run folder: outputs/runs/NAME')"
        )
    if args.run_dir:
        check_run_dir(Path(args.run_dir), Path(cfg.train.out), Path(cfg.eval.out))
    if args.foundation:
        model_config_for(cfg, args.foundation)


def run(args: argparse.Namespace) -> int:
    """Serve the deployment, or run the flow once and print its summary."""
    from prefect.flows import EntrypointType

    from flows.train_flow import train_flow

    one_line_user_errors()
    if args.command == "serve":
        train_flow.serve(name=args.name, limit=args.limit, entrypoint_type=EntrypointType.MODULE_PATH)
        return 0
    check_run(args)
    result = train_flow(
        params=args.params,
        overrides=args.set,
        nproc=args.nproc,
        foundation=args.foundation,
        register=not args.no_register,
        experiment=args.experiment,
        tracking_uri=args.tracking_uri,
        run_dir=args.run_dir,
        resume=args.resume,
        publish=args.publish,
    )
    print(json.dumps({k: v for k, v in result.items() if k != "metrics"}, indent=1, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    return exit_code(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
