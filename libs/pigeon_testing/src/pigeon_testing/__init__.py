"""pigeon_testing."""
