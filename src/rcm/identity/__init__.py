"""Who is calling: OAuth2 token endpoint, JWT verification, roles, scopes, guards, break-glass."""
