"""The FastAPI service: API routers, WebSocket, templates and static files."""
