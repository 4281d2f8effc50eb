"""Administration of users and roles: add a person by personnummer, grant and revoke roles."""
