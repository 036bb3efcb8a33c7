"""What a browser holds, or points to, while it uses the provider.

Both sides of a sign-in read these, so they live below both: the protocol
(``oidc/``) and the sign-in (``login/``, ``factors/``, ``password/``,
``account/``) import from here, never from each other.

- :mod:`.cookies`: every cookie we set, its name and its attributes, in one place;
- :mod:`.sso`: the single sign-on session (a row; the browser holds its id);
- :mod:`.interaction`: an authorization request waiting for the sign-in
  (validated once by ``oidc/``, resumed by it when the sign-in is done);
- :mod:`.signin`: the sign-in in progress (who, what they proved and when,
  what is still wanted), one typed object loaded and saved once per request.
"""
