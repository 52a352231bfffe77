"""Who may do what: the admin key, per-KB API keys with read or write rights, and the audit log of writes."""
