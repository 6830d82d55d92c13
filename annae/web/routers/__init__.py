"""API routers of the service (``/api/v1``, auth forms, health and metrics)."""
