"""`python -m server.api [--host H] [--port P]`: run the API server alone."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from configs import load_settings
from server.api.app import create_app
from server.bootstrap import configure_logging
from server.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.api", description="Run the Zhiku API server.")
    parser.add_argument("--host", help="address to bind (default: api.host in the settings)")
    parser.add_argument("--port", type=int, help="port (default: api.port in the settings)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        sys.stderr.write(f"{error.message}\n")
        return 2
    configure_logging(settings.log_level)
    host = args.host or settings.api.host
    port = args.port or settings.api.port
    logging.getLogger("zhiku").info("API on http://%s:%d (docs at /docs)", host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
