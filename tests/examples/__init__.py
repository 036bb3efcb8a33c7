"""Tests of the Expense demo app (examples/relying_party/)."""
