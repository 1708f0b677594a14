"""The command layer: what REST routes and admin pages call, one function per operation.

Each command loads the state it needs from the read models, asks the pure domain
(`pigeon_common.domain`) whether the actor may do it and what events it makes, stores
those events, and returns a plain result. It raises `RuleError`s; every surface
translates them once (REST in `pigeon_api.errors`). No command knows of HTTP.
"""
