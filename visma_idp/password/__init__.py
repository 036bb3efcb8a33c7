"""Passwords: hashing (Argon2id) now; the policy and views come with the account issue."""
