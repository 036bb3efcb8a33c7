"""Standalone visma_idp server.

    python idp_server.py [--host H] [--port P] [--workers N] [--threads T] [--dev] [--demo]

does what ``visma-idp serve`` does: upgrades the database, ensures signing
keys, then runs gunicorn. For another WSGI server, point it at
``idp_server:app`` (or ``visma_idp.wsgi:app``); the app is built on first
access from the ``VISMA_IDP_*`` environment.
"""

from __future__ import annotations

import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from visma_idp.wsgi import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    from visma_idp.cli import main

    main(["serve", *sys.argv[1:]], prog_name="idp_server.py")
