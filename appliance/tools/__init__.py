"""Tools: the Tool interface, the tools, the sandbox, and the remote proxy and tool server."""
