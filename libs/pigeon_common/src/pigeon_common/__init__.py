"""pigeon_common."""
