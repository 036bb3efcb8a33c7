"""The authentication session: the steps done, auth_time, amr/acr, and what is still needed."""
