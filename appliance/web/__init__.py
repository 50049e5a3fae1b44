"""The HTTP edge of a node: REST, the OpenAI-compatible API, SSE/WebSocket, the UI."""
