"""Test worlds: CRM datasets drawn from latent models written independently of leadloop and of the
sandbox, so that tests can measure the playbook and what the review learns against outcomes leadloop
never saw being made (`buying_cycle.generate`)."""

from worlds.buying_cycle import World, generate

__all__ = ["World", "generate"]
