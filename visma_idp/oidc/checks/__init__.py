"""Authorization-request checks, one small module each (after node-oidc-provider's
``lib/actions/authorization/``). Each opens with the rules it enforces."""
