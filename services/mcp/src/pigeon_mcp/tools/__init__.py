"""The tools, one module per resource; each `register(server, gateway)` adds its own."""
