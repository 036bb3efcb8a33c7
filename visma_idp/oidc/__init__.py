"""OpenID Connect: Authlib's AuthorizationServer wired to our storage, keys and login."""
