"""Storage: the SQLAlchemy models and the queries the package runs.

All SQL lives here (models.py for tables, queries.py for the statements the
protocol and login code run), so the rest of the package reads as protocol.
"""

from .models import (  # noqa: F401
    AccountToken,
    AdminRight,
    AuditEvent,
    AuthorizationCode,
    Base,
    Client,
    ClientSnapshot,
    Consent,
    Factor,
    MailOutbox,
    OneTimeCode,
    PasswordHistory,
    ProfileChangeNotice,
    RecoveryCode,
    SeenJti,
    SigningKey,
    SmsCode,
    SmsOutbox,
    SsoSession,
    Token,
    User,
    db,
)
