"""Expense: a demo relying app that signs in through visma_idp (see README.md)."""

from .app import create_app

__all__ = ["create_app"]
