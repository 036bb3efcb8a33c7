"""``python -m examples.relying_party``: run Expense on http://127.0.0.1:5001 (settings: README.md)."""

from .app import main

main()
