"""Work that runs after the answer has gone out.

"Forgot password" and "send a new activation link" must not tell whether an
address has an account (or a pending invitation): not by the answer, and
not by the time it takes. So those forms answer after doing only the work
that is the same for every address (check the form and the human check,
count the quotas, commit the used challenge); everything that depends on the
address (finding the account, issuing links, composing the mail, the audit
row) runs once the answer has been sent, through :func:`after_answer`.

Why after the answer rather than equal work: the two paths cannot be made to
cost the same. A known address inserts links and an encrypted outbox row and
renders the mail. Forgot-password already did what it could for nobody (the
same void statement, matching nothing; the mail rendered and thrown away)
and a known address still took about 2 ms longer (10 against 8 ms; on a busy
test machine +5.8 ms at the median); every change to either path would have
to be mirrored in the other. Work that starts after the last byte of the
answer cannot show in the answer's time, whatever it is.

Rules:
- the job runs when the WSGI server closes the response, after sending it
  (Werkzeug's ``call_on_close``: gunicorn, granian and Werkzeug's server all
  close the response once it is written). With Flask's test client, which
  does not close responses by itself, a test calls ``response.close()``, as
  the server would;
- it runs in a copy of the request's context (the page's language for the
  mail, the client IP and user agent for the audit row) with a database
  session of its own, which the job commits;
- an error in the job is logged with its traceback and rolled back: the
  answer is gone already, and the person sees "check your email" as when SMTP
  fails; nothing leaks to the client;
- with ``MAIL_FLUSH_AFTER_REQUEST`` (dev, demo) the mail the job queues is
  sent by the flush after the response, which runs after the job (it is
  registered later on the same response);
- what remains: the job still costs a few milliseconds of CPU after the
  answer. A client that measures its NEXT request on the same, otherwise
  idle worker could see that; the proof-of-work per request and the quotas
  per address keep such sampling slow and small.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import after_this_request, copy_current_request_context

from ..context import request_state
from ..storage import db

log = logging.getLogger("visma_idp.deferred")


def after_answer(job: Callable[[], None], *, name: str) -> None:
    """Run ``job`` once this request's answer has been sent (see the module rules).

    Args:
        job: the work; it commits what it does.
        name: what it is, for the log line when it fails.
    """

    @copy_current_request_context
    def run() -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - the answer has gone; log it, keep the server going
            db.session.rollback()
            log.exception("%s after the answer failed", name)

    request_state().mail_queued = True  # notify/outbox.py: flush (after this job) when the app flushes after requests

    @after_this_request
    def schedule(response):
        response.call_on_close(run)
        return response
