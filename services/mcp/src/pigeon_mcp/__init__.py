"""The MCP gateway: every campaign operation as a typed, annotated tool over the REST API."""
