"""The web process's blueprints: thin handlers that verify, authorize and enqueue."""
