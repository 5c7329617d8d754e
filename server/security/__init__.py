"""Who may do what: sessions and login, signed tokens, passwords, rate limits, secrets."""
