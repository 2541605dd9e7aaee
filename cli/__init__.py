"""The `leadloop` command line (Typer): one module per command group (`scoring`: score, explain,
playbook; `route`; `crm`: setup and check; `run`: sync, rescore, demo), what a run shows in a terminal
(`output`), and the demo (`demo`). `app` assembles them."""
