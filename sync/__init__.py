"""The sync's use cases without Prefect: open the runtime (settings, playbook, store, one client per
CRM), pull a stream, resolve identity, score, route, plan the writes and apply them. Each function is
one I/O step or one pure call; the flows in `flows/` wrap them as Prefect tasks and only sequence
them, and the CLI and the tests can call them directly."""
