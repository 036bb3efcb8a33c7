"""Passwords: hashing (Argon2id), the policy and the guesses it refuses,
setting a password (``service.py``), the throttled check of the current
password (``confirm.py``), the human check (``challenge.py``) and their
settings.

It is a layer below the pages that use it: it imports nothing of
``account/`` (forgot password, reset and the live check are
``account/recovery.py`` and ``account/password_check.py``) or of
``login/``, and registers no pages of its own.
"""
