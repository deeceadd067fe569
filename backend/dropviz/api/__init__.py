"""The HTTP and WebSocket surface: routers, request and response schemas."""
