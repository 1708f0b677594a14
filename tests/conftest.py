"""Shared fixtures: real servers started once per test session (see libs/pigeon_testing)."""

pytest_plugins = [
    "pigeon_testing.servers",
    "pigeon_testing.nats_cluster",
    "pigeon_testing.dovecot",
    "pigeon_testing.smtp",
    "pigeon_testing.stack_fixtures",
    "pigeon_testing.flufl_samples",
    "pigeon_testing.browser",
]
