"""Administration: the operations behind the CLI (and, later, the admin console and API)."""
