"""Outgoing messages: compose them from templates (``messages.py``), keep
them in the outbox table, and send them (``outbox.py``, ``smtp.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .. import IdentityProvider


def init_app(app: Flask, idp: IdentityProvider) -> None:
    """The dev outbox pages (demo mode only), mail sent right after a
    response (``MAIL_FLUSH_AFTER_REQUEST``), and queued mail told on the
    console in demo mode."""
    from .console import install_console
    from .outbox import install_flush
    from .views import bp as dev_outbox_bp

    idp.register_blueprints(app, dev_outbox_bp)
    install_flush(app, idp)
    install_console(app, idp)
