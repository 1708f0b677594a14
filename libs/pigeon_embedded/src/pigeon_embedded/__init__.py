"""pigeon_embedded."""
