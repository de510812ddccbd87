"""`python -m simulation --web.listen-address 127.0.0.1:8000`: serve the simulated services."""

import argparse

from aiohttp import web

from simulation.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulation", description=__doc__)
    parser.add_argument("--web.listen-address", dest="listen", default="127.0.0.1:8000")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    # The MCP stand-in streams forever: do not wait for its clients when told to stop.
    web.run_app(
        create_app(), host=host or "127.0.0.1", port=int(port), print=None, shutdown_timeout=1
    )


if __name__ == "__main__":
    main()
