"""Outgoing messages: compose them from templates (``messages.py``), keep
them in the outbox table, and send them (``outbox.py``, ``smtp.py``)."""
