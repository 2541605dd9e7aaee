"""A local HTTPS server speaking the Salesforce REST and HubSpot CRM v3 APIs, seeded with a synthetic
semiconductor/industrial B2B world, with fault injection and call statistics under `/_sandbox`.

Entry points: `sandbox.server.running_sandbox(...)` (in-process, for the demo and tests),
`leadloop sandbox serve|export` (the command line), `sandbox.world.generate_world(size, seed)`.
It imports nothing of leadloop, so it cannot hide a connector's mistake.
"""
