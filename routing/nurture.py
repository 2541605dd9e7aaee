"""Nurture: the track a person enters and the next asset to send them.

The next asset comes from the asset catalog's stage mapping: an asset of the stage after the
person's current one, in their segment (generic assets when none is), that they have not consumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from crm.records import Asset
from scoring.routing_schema import NurtureTrack, RoutingSection


def nurture_track(section: RoutingSection, segment: str | None, stage: str | None,
                  profile: str | None) -> NurtureTrack | None:
    """The first track whose filters match, else the default track, else None."""
    for track in section.nurture.tracks:
        if track.matches(segment, stage, profile):
            return track
    default = section.nurture.default_track
    return next((t for t in section.nurture.tracks if t.name == default), None)


class AssetCatalog:
    """Assets indexed by stage, in a stable order (by id), for next-asset lookups."""

    def __init__(self, assets: Iterable[Asset], stage_order: Sequence[str]) -> None:
        self.stage_order = [s.lower() for s in stage_order]
        self.by_stage: dict[str, list[Asset]] = {}
        for asset in sorted(assets, key=lambda a: a.id):
            if asset.stage:
                self.by_stage.setdefault(asset.stage.lower(), []).append(asset)

    def next_asset(self, stage: str | None, segment: str | None,
                   consumed: frozenset[str] | set[str]) -> Asset | None:
        """The first unconsumed asset at the next stage (then later stages, then the current one):
        in the person's segment first, a generic one (no segment) otherwise."""
        order = self.stage_order
        current = order.index(stage.lower()) if stage and stage.lower() in order else -1
        candidates = [*order[current + 1:], *([order[current]] if current >= 0 else [])]
        segment = segment.lower() if segment else None
        for wanted_stage in candidates:
            assets = [a for a in self.by_stage.get(wanted_stage, ())
                      if a.id not in consumed and a.name not in consumed]
            exact = [a for a in assets if segment and a.segment and a.segment.lower() == segment]
            generic = [a for a in assets if not a.segment]
            if exact or generic:
                return (exact or generic)[0]
        return None
