"""The federation settings (``federation/``): upstream providers and national eID.

Rows of :class:`visma_idp.config.Setting`, gathered by ``config.py`` (which
validates them and generates docs/configuration.md from them). This module
imports nothing but config's parsers.
"""

from __future__ import annotations

from ..config import Setting, integer

SETTINGS: tuple[Setting, ...] = (
    Setting("UPSTREAM_METADATA_SECONDS", 3600, integer(60),
            "Seconds an upstream provider's discovery document and keys are used before they are fetched again "
            "(keys are fetched at once for a token signed with a key id we do not know, at most once a minute)."),
    Setting("UPSTREAM_CACHE_SECONDS", 30, integer(0),
            "Seconds a process keeps the list of upstreams the email page shows and the domains that go to them "
            "(an upstream added or removed with another node's command shows within this time; 0: read it on "
            "every page)."),
    Setting("UPSTREAM_HTTP_TIMEOUT", 5, integer(1),
            "Seconds to wait for an upstream provider (discovery, keys, the token endpoint) before the person is "
            "told it does not answer."),
    Setting("UPSTREAM_ROUNDTRIP_SECONDS", 600, integer(60),
            "Seconds a person has to come back from an upstream provider before the round trip expires."),
    Setting("UPSTREAM_CLOCK_SKEW", 60, integer(0),
            "Seconds of clock difference allowed when checking an upstream ID token's `exp` and `iat`."),
)
