"""The asset catalog: which datasheet, app note, EVK, sample, webinar or booth an activity was about.

An activity is recognized by its URL (without query string), form name or campaign name (regexes,
case-insensitive, matched by RE2 in time linear in the text: visitors choose the URLs) or by its
asset id; the first catalog entry that matches wins. Each distinct (kind, url, form, campaign, asset
id) is classified once per run, so millions of activities cost a dictionary lookup each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leadloop.crm.records import Activity, ActivityKind, Asset
from leadloop.playbook.model import CatalogAsset, Playbook
from leadloop.playbook.patterns import Matcher, compile_patterns

ActivityKey = tuple[ActivityKind, str | None, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class AssetInfo:
    """A recognized asset, with its place in the evaluation journey."""

    id: str
    name: str
    type: str
    stage: str
    product_family: str | None = None
    segment: str | None = None


def activity_key(activity: Activity) -> ActivityKey:
    return (activity.kind, activity.url, activity.form_name, activity.campaign_name, activity.asset_id)


def _any(patterns: list[str]) -> Matcher | None:
    return compile_patterns(patterns) if patterns else None


class _Entry:
    __slots__ = ("asset_ids", "campaigns", "forms", "info", "kinds", "urls")

    def __init__(self, asset: CatalogAsset) -> None:
        self.info = AssetInfo(
            asset.id, asset.name, asset.type, asset.stage, asset.product_family, asset.segment
        )
        self.urls = _any(asset.match.urls)
        self.forms = _any(asset.match.forms)
        self.campaigns = _any(asset.match.campaigns)
        self.asset_ids = frozenset(asset.match.asset_ids)
        self.kinds = frozenset(asset.match.kinds)

    def matches(self, key: ActivityKey) -> bool:
        kind, url, form, campaign, asset_id = key
        if self.kinds and kind not in self.kinds:
            return False
        return bool(
            (asset_id is not None and asset_id in self.asset_ids)
            or (url and self.urls and self.urls.search(url))
            or (form and self.forms and self.forms.search(form))
            or (campaign and self.campaigns and self.campaigns.search(campaign))
        )


class AssetCatalog:
    """A playbook's catalog, compiled. Dataset assets (by asset id) are a fallback after the catalog."""

    def __init__(self, playbook: Playbook) -> None:
        self.entries = [_Entry(asset) for asset in playbook.assets]
        self.stages = tuple(playbook.stages)
        self.by_asset_id: dict[str, AssetInfo] = {}

    def classify_key(self, key: ActivityKey) -> AssetInfo | None:
        """URL patterns see the URL without its query string and fragment (tracking noise)."""
        url = key[1]
        if url and ("?" in url or "#" in url):
            key = (key[0], url.split("#", 1)[0].split("?", 1)[0], key[2], key[3], key[4])
        for entry in self.entries:
            if entry.matches(key):
                return entry.info
        asset_id = key[4]
        return self.by_asset_id.get(asset_id) if asset_id is not None else None

    def with_dataset_assets(self, assets: Iterable[Asset]) -> AssetCatalog:
        """This catalog plus the dataset's own asset records, recognized by asset id."""
        assets = sorted(assets, key=lambda a: a.id)
        if not assets:
            return self
        clone = object.__new__(AssetCatalog)
        clone.entries, clone.stages = self.entries, self.stages
        clone.by_asset_id = {
            a.id: AssetInfo(
                a.id,
                a.name,
                a.type,
                a.stage if a.stage in self.stages else self.stages[0],
                a.product_family,
                a.segment,
            )
            for a in assets
        }
        return clone


# Kinds that never name content, whatever campaign or URL they carry.
_CONTENTLESS = frozenset(
    {
        ActivityKind.UNSUBSCRIBE,
        ActivityKind.HARD_BOUNCE,
        ActivityKind.SALES_CALL,
        ActivityKind.SALES_EMAIL,
        ActivityKind.MEETING,
    }
)


def has_something_to_classify(key: ActivityKey) -> bool:
    """Whether an activity is about content at all (names a URL, form, campaign or asset id)."""
    return key[0] not in _CONTENTLESS and any(part for part in key[1:])
