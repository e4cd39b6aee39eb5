"""`python -m sandbox [--host H] [--port P]`: serve the sandbox with uvicorn, logging to stdout."""

import argparse
import copy
import logging
import logging.config

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from sandbox.app import create_app
from sandbox.settings import SandboxSettings


def main() -> None:
    settings = SandboxSettings()
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()

    # uvicorn sends its own logs to stderr by default; containers and `make run` collect stdout.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["handlers"]["default"]["stream"] = "ext://sys.stdout"
    log_config["loggers"]["sandbox"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    logging.config.dictConfig(log_config)  # now, so the start-up line below goes the same way

    logging.getLogger("sandbox").info(
        "sandbox on %s:%s faults latency_ms=%s error_rate=%s error_status=%s seed=%s",
        args.host,
        args.port,
        settings.latency_ms,
        settings.error_rate,
        settings.error_status,
        settings.seed,
    )
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, log_config=log_config, workers=1
    )  # never WEB_CONCURRENCY (the API's)


if __name__ == "__main__":
    main()
