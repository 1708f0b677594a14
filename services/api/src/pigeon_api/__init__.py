"""pigeon_api."""
