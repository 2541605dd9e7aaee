"""Nurture: the track a person enters and the next asset to send them.

The next asset comes from the asset catalog's stage mapping: an asset of the stage after the
person's current one, in their segment (generic assets when none is), that they have not consumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from leadloop.crm.records import Asset
from leadloop.playbook.routing import NurtureTrack, RoutingSection


def nurture_track(section: RoutingSection, segment: str | None, stage: str | None,
                  profile: str | None) -> NurtureTrack | None:
    """The first track whose filters match, else the default track, else None."""
    for track in section.nurture.tracks:
        if track.matches(segment, stage, profile):
            return track
    default = section.nurture.default_track
    return next((t for t in section.nurture.tracks if t.name == default), None)


class AssetCatalog:
    """Sendable assets (of `asset_types`; any when empty) indexed by stage and segment, each list
    in a stable order (by id)."""

    def __init__(self, assets: Iterable[Asset], stage_order: Sequence[str],
                 asset_types: Iterable[str] = ()) -> None:
        sendable = {t.lower() for t in asset_types}
        self.stage_order = [s.lower() for s in stage_order]
        self._position = {s: i for i, s in enumerate(self.stage_order)}
        self._by_segment: dict[tuple[str, str], list[Asset]] = {}
        self._generic: dict[str, list[Asset]] = {}
        self._candidates: dict[tuple[str | None, str | None], tuple[Asset, ...]] = {}
        for asset in sorted(assets, key=lambda a: a.id):
            if not asset.stage or (sendable and asset.type.lower() not in sendable):
                continue
            stage = asset.stage.lower()
            if asset.segment:
                self._by_segment.setdefault((stage, asset.segment.lower()), []).append(asset)
            else:
                self._generic.setdefault(stage, []).append(asset)

    def next_asset(self, stage: str | None, segment: str | None,
                   consumed: frozenset[str] | set[str]) -> Asset | None:
        """The first unconsumed asset at the next stage (then later stages, then the current one):
        in the person's segment first, a generic one (no segment) otherwise."""
        key = (stage.lower() if stage else None, segment.lower() if segment else None)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = self._candidates[key] = self._candidates_for(*key)
        for asset in candidates:
            if asset.id not in consumed and asset.name not in consumed:
                return asset
        return None

    def _candidates_for(self, stage: str | None, segment: str | None) -> tuple[Asset, ...]:
        """Every asset `next_asset` may pick for this stage and segment, in preference order."""
        order = self.stage_order
        current = self._position.get(stage, -1) if stage else -1
        stages = [*order[current + 1:], *([order[current]] if current >= 0 else [])]
        picks: list[Asset] = []
        for wanted in stages:
            if segment:
                picks += self._by_segment.get((wanted, segment), ())
            picks += self._generic.get(wanted, ())
        return tuple(picks)
