"""pigeon_cli."""
