"""SMS: verify a phone number at enrolment, remove."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sms", __name__)
