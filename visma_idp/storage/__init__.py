"""Storage: the SQLAlchemy models and the queries the package runs.

All SQL lives here (models.py for tables, queries.py for the statements the
protocol and login code run), so the rest of the package reads as protocol.
"""

from .models import (  # noqa: F401
    AccountToken,
    AuditEvent,
    AuthorizationCode,
    Base,
    Client,
    ClientSnapshot,
    Consent,
    MailOutbox,
    PasswordHistory,
    ProfileChangeNotice,
    SeenJti,
    SigningKey,
    SsoSession,
    Token,
    User,
    db,
)
