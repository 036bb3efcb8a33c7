"""Self-service account: My details, email change, notification settings,
sessions and security activity; the single-use links sent by email."""
