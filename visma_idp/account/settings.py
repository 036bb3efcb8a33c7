"""The account settings (``account/``): profile-change notices, activation and email-change links and quotas.

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers, so reading the settings never loads
the package's views.
"""

from __future__ import annotations

from ..config import Setting, integer

SETTINGS: tuple[Setting, ...] = (
    Setting("NOTIFY_BATCH_SECONDS", 900, integer(0),
            "Profile changes within this many seconds of the first are told to the user in one email; so are "
            "changes of their roles in one agreement (the net change: a role given and taken away again is not told)."),
    Setting("ACTIVATION_LIFETIME", 7 * 24 * 3600, integer(60), "Seconds an activation link stays valid (7 days)."),
    Setting("EMAIL_CHANGE_LIFETIME", 24 * 3600, integer(60),
            "Seconds the link that confirms a new email address stays valid."),
    Setting("EMAIL_CHANGE_CANCEL_LIFETIME", 14 * 24 * 3600, integer(3600),
            "Seconds the \"this wasn't me\" link sent to the old address stays valid (14 days: an old mailbox "
            "may be read late)."),
    Setting("EMAIL_CHANGES_PER_HOUR", 5, integer(1), "Requests to change the email address one user may make in an hour."),
    Setting("ACTIVATION_RESEND_PER_EMAIL", 3, integer(1), "New activation links one address may ask for in an hour."),
    Setting("ACTIVATION_RESEND_PER_IP", 20, integer(1), "Requests for a new activation link one client IP may make in an hour."),
    Setting("PASSWORD_CHECK_PER_IP", 600, integer(10),
            "Live password checks (`POST /password/check`, asked as a new password is typed) one client IP may make "
            "in 5 minutes; more get 429. Posting the form is not limited by this: the password is checked then too."),
)
