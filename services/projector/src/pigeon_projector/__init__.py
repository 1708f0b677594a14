"""pigeon_projector."""
