"""Identity resolution: one canonical person across a Salesforce Lead, a Salesforce Contact and a
HubSpot contact, and one canonical account across a Salesforce Account and a HubSpot company.

Pure (no database): CRM-qualified records in, canonical records, links and conflicts out.

People are the same person when they share a normalized email, when the Salesforce–HubSpot
integration's cross-ids say so (HubSpot `salesforcecontactid` / `salesforceleadid`, kept in
`Person.attributes`) and the emails agree, or when a converted Lead points at its Contact
(`attributes["converted_to"]`). The canonical id is `person:<email>`, or the first CRM id when no
email is known. Two records of one CRM object with one email are the same human, so they merge,
and the duplicate is recorded; a cross-id pointing at someone with another email is recorded and
not merged.

Accounts are the same account when the integration's cross-id (HubSpot `salesforceaccountid`) says
so and the domains agree, or when they share a website domain across CRMs. Two accounts of one CRM
with one domain are often divisions or regional entities with their own owners, so they are
recorded and never merged: the one with the most people (then the lowest id) takes
`account:<domain>`, the others keep their CRM id. Personal email domains never identify an account.

Field precedence when records merge:
- profile and firmographic fields: the first value present in Salesforce Contact > Lead > HubSpot
  (Salesforce Account > HubSpot company), the most recently updated record first within one object;
- lifecycle status: the most recently updated record that has one;
- lead source: the earliest created record that has one (where the person came from first);
- unsubscribed, bounced, partner-owned, distributor-registered: true if any source says so;
- created_at the earliest, updated_at the latest; each CRM id from its own record.

A person's account is the one their Contact or HubSpot association names, else the account whose
domain is their email domain (lead-to-account matching), noted in `attributes["account_match"]`.
`match_dataset_accounts` does the same for a dataset file whose records are already canonical (the
command line's `score`, `explain` and `route`), with the same rules (`_domain_rank`,
`account_by_email_domain`), so a lead is joined to the same account there as in the sync.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from leadloop.crm.batch import build_many, slot_setters
from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Activity, CustomerType, Opportunity, Person

PERSONAL_EMAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "yahoo.co.jp", "yahoo.co.uk", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com",
    "proton.me", "protonmail.com", "gmx.com", "gmx.de", "web.de", "mail.com", "yandex.ru", "mail.ru",
    "qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "naver.com", "hanmail.net",
})

# Conflict kinds, for the data-quality flow.
DUPLICATE_EMAIL = "duplicate_email"
CROSS_ID_EMAIL_MISMATCH = "cross_id_email_mismatch"
CROSS_ID_UNKNOWN = "cross_id_unknown"
CONVERTED_LEAD_WITHOUT_CONTACT = "converted_lead_without_contact"
DUPLICATE_DOMAIN = "duplicate_domain"
CROSS_ID_DOMAIN_MISMATCH = "cross_id_domain_mismatch"

_new = object.__new__

_PERSON_RANK = {"sf-contact": 0, "sf-lead": 1, "hs-contact": 2}
_ACCOUNT_RANK = {"sf-account": 0, "hs-company": 1}
_PERSON_CROSS_IDS = (("salesforcecontactid", "sf-contact"), ("salesforceleadid", "sf-lead"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PROFILE_FIELDS = ("first_name", "last_name", "title", "department", "country", "region", "company_name",
                   "owner_id")
_ANY_FLAGS = ("unsubscribed", "bounced", "partner_owned", "distributor_registered")
_ACCOUNT_FIELDS = ("name", "website", "industry", "segment", "application", "device_type", "process",
                   "package", "region", "country", "employees", "annual_revenue", "owner_id")

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class IdentityConflict:
    """Records identity could not (or should not) settle alone; `detail` says what to fix."""

    kind: str
    record_ids: tuple[str, ...]
    detail: str


@dataclass(slots=True)
class IdentityResult:
    people: list[Person]
    accounts: list[Account]
    activities: list[Activity]
    opportunities: list[Opportunity]
    links: dict[str, str] = field(default_factory=dict)  # CRM-qualified id → canonical id
    conflicts: list[IdentityConflict] = field(default_factory=list)
    person_links: dict[str, str] = field(default_factory=dict)  # the people's part of `links`


def source_of(record_id: str) -> str:
    """`sf-lead:00Q...` → `sf-lead`; an id without a CRM prefix → ``."""
    return record_id.split(":", 1)[0] if ":" in record_id else ""


def _raw(record_id: str) -> str:
    return record_id.split(":", 1)[1] if ":" in record_id else record_id


def _with(record: R, **changes: Any) -> R:
    """A copy with some already-validated fields replaced, without re-validating the whole record.

    Slot by slot: `copy.copy` of a slotted dataclass goes through its pickling state (a list of
    every field, rebuilt per record), ten times slower."""
    clone = _new(type(record))
    for name, setter in slot_setters(type(record)):
        setter(clone, changes[name] if name in changes else getattr(record, name))
    return clone


_PERSON_ID = attrgetter("person_id")
_SET_PERSON_ID = dict(slot_setters(Activity))["person_id"]


def _with_person_ids(activities: Sequence[Activity], person_links: Mapping[str, str],
                     in_place: bool = False) -> list[Activity]:
    """The activities, each one whose person has a canonical id re-pointed to it, the rest as they
    are. Re-pointed ones are copies built column by column (re-pointing millions of activities one
    by one was a third of reloading the store), or, `in_place`, the same objects with their person
    id slot set: for a caller that owns them, fresh from the store, so that reloading neither copies
    two million activities nor holds both copies at once."""
    if in_place:
        person_ids = list(map(_PERSON_ID, activities))
        deque(map(_SET_PERSON_ID, activities, map(person_links.get, person_ids, person_ids)), maxlen=0)
        return list(activities)
    moved = [a for a in activities if a.person_id in person_links]
    if not moved:
        return list(activities)
    columns = {name: list(map(attrgetter(name), moved)) for name, _ in slot_setters(Activity)}
    columns["person_id"] = list(map(person_links.__getitem__, columns["person_id"]))
    repointed = iter(build_many(Activity, len(moved), columns))
    return [next(repointed) if a.person_id in person_links else a for a in activities]


class _Groups:
    """Union-find over record ids."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.parent = {i: i for i in ids}

    def find(self, item: str) -> str:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
        return ra

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for item in self.parent:
            out[self.find(item)].append(item)
        return out


def _recency(record: Person | Account) -> datetime:
    return record.updated_at or _EPOCH


def _sf_index(ids: Iterable[str]) -> dict[tuple[str, str], str]:
    """(source, first 15 chars of the Salesforce id) → record id: cross-ids may be 15 or 18 chars."""
    return {(source_of(i), _raw(i)[:15]): i for i in ids if source_of(i).startswith("sf-")}


def _qualify(value: str | None, prefix: str) -> str | None:
    if not value:
        return None
    return value if ":" in value else f"{prefix}:{value}"


def _link_accounts(accounts: Sequence[Account], people_per_account: dict[str, int],
                   conflicts: list[IdentityConflict]) -> tuple[dict[str, str], dict[str, str], list[Account]]:
    """(links account id → canonical id, domain → canonical id, merged accounts)."""
    by_id = {a.id: a for a in accounts}
    groups = _Groups(by_id)
    sources: dict[str, set[str]] = {a.id: {source_of(a.id)} for a in accounts}

    def join(a: str, b: str) -> bool:
        ra, rb = groups.find(a), groups.find(b)
        if ra == rb:
            return True
        if sources[ra] & sources[rb]:
            return False
        root = groups.union(ra, rb)
        sources[root] = sources[ra] | sources[rb]
        return True

    sf_ids = _sf_index(by_id)
    for company in accounts:
        raw = company.attributes.get("salesforceaccountid") if source_of(company.id) == "hs-company" else None
        if not raw:
            continue
        target = sf_ids.get(("sf-account", raw.strip()[:15]))
        if target is None:
            conflicts.append(IdentityConflict(CROSS_ID_UNKNOWN, (company.id,),
                                              f"salesforceaccountid {raw} names no pulled Account"))
            continue
        other = by_id[target]
        if company.domain and other.domain and company.domain != other.domain:
            conflicts.append(IdentityConflict(
                CROSS_ID_DOMAIN_MISMATCH, (company.id, target),
                f"HubSpot company ({company.domain}) names Salesforce Account {target} ({other.domain}) "
                "as its twin; not merged"))
            continue
        join(company.id, target)

    by_domain: dict[str, list[str]] = defaultdict(list)
    for account in accounts:
        if account.domain and account.domain not in PERSONAL_EMAIL_DOMAINS:
            by_domain[account.domain].append(account.id)

    domain_owner: dict[str, str] = {}  # domain → root of the account group that takes account:<domain>
    for domain in sorted(by_domain):
        ids = sorted(by_domain[domain])
        per_source: dict[str, list[str]] = defaultdict(list)
        for i in ids:
            per_source[source_of(i)].append(i)
        for source, same in sorted(per_source.items()):
            if len(same) > 1:
                conflicts.append(IdentityConflict(
                    DUPLICATE_DOMAIN, tuple(same),
                    f"{len(same)} {source or 'other'} accounts share the domain {domain}; kept apart"))

        roots = [groups.find(i) for i in ids]
        ordered = sorted(ids, key=lambda i: _domain_rank(i, roots.count(groups.find(i)),
                                                          people_per_account.get(i, 0)))
        primary = ordered[0]
        for other in ordered[1:]:
            join(primary, other)
        domain_owner[domain] = groups.find(primary)

    links: dict[str, str] = {}
    merged: list[Account] = []
    domain_ids: dict[str, str] = {}
    owned_domain = {root: domain for domain, root in domain_owner.items()}
    for root, member_ids in sorted(groups.groups().items()):
        members = sorted((by_id[i] for i in member_ids), key=_account_precedence)
        domain = owned_domain.get(root)
        canonical = f"account:{domain}" if domain else members[0].id
        if domain:
            domain_ids[domain] = canonical
        for member in members:
            links[member.id] = canonical
        merged.append(_merge_account(canonical, members))
    return links, domain_ids, merged


def _domain_rank(account_id: str, group_size: int, people: int) -> tuple[int, int, str]:
    """Which of the accounts sharing a domain takes it, lowest first: the one whose group joins the
    most of them (across CRMs), then the one with the most people, then the lowest id."""
    return (-group_size, -people, account_id)


def account_by_email_domain(domain: str | None, domain_ids: Mapping[str, str]) -> str | None:
    """The account an email domain names (lead-to-account matching): the one that took the domain
    in `domain_ids` (domain → account id); None for a personal domain or one no account has."""
    if not domain or domain in PERSONAL_EMAIL_DOMAINS:
        return None
    return domain_ids.get(domain)


def match_dataset_accounts(dataset: Dataset) -> Dataset:
    """The dataset with each person whose account id names none of its accounts joined to the account
    of their email domain, as `resolve_identity` joins them in the sync (`attributes["account_match"]`
    says so); the rest as they are. For records that are already canonical, one per person and
    account (a dataset file): nothing is merged and no id changes. A domain shared by several
    accounts goes to the one with the most people, then the lowest id, as in the sync."""
    known = {a.id for a in dataset.accounts}
    people_per_account: dict[str, int] = defaultdict(int)
    for person in dataset.people:
        if person.account_id in known:
            people_per_account[person.account_id] += 1
    by_domain: dict[str, list[str]] = defaultdict(list)
    for account in dataset.accounts:
        if account.domain and account.domain not in PERSONAL_EMAIL_DOMAINS:
            by_domain[account.domain].append(account.id)
    domain_ids = {domain: min(ids, key=lambda i: _domain_rank(i, 1, people_per_account.get(i, 0)))
                  for domain, ids in by_domain.items()}
    people = []
    for person in dataset.people:
        matched = None if person.account_id in known else account_by_email_domain(person.email_domain,
                                                                                  domain_ids)
        if matched is not None:
            person = _with(person, account_id=matched,
                           attributes={**person.attributes, "account_match": "email_domain"})
        people.append(person)
    return replace(dataset, people=people)


def _account_precedence(account: Account) -> tuple[int, float, str]:
    return (_ACCOUNT_RANK.get(source_of(account.id), 9), -_recency(account).timestamp(), account.id)


def _first(records: Sequence[Any], name: str) -> Any:
    return next((value for r in records if (value := getattr(r, name)) is not None), None)


def _merged_attributes(records: Sequence[Person | Account]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for record in reversed(records):  # higher precedence last, so it wins
        attributes.update(record.attributes)
    return attributes


def merge_account_group(canonical: str, members: Sequence[Account]) -> Account | None:
    """The canonical account `canonical` of one group of CRM accounts, by the module's precedence;
    None when that is not the group's id any longer (a group without a domain whose first member
    changed: `resolve_identity` must merge the store)."""
    members = sorted(members, key=_account_precedence)
    if not members or not (canonical.startswith("account:") or members[0].id == canonical):
        return None
    return _merge_account(canonical, members)


def _merge_account(canonical: str, members: Sequence[Account]) -> Account:
    first = members[0]
    values = {name: _first(members, name) for name in _ACCOUNT_FIELDS}
    customer_type = next((a.customer_type for a in members if a.customer_type != CustomerType.PROSPECT),
                         CustomerType.PROSPECT)
    sf = next((a for a in members if source_of(a.id) == "sf-account"), None)
    hs = next((a for a in members if source_of(a.id) == "hs-company"), None)
    updated = [a.updated_at for a in members if a.updated_at]
    return _with(
        first, id=canonical, domain=_first(members, "domain"), customer_type=customer_type,
        salesforce_id=(sf.salesforce_id or _raw(sf.id)) if sf else _first(members, "salesforce_id"),
        hubspot_id=(hs.hubspot_id or _raw(hs.id)) if hs else _first(members, "hubspot_id"),
        attributes=_merged_attributes(members), updated_at=max(updated) if updated else None, **values,
    )


def repoint_activities(activities: list[Activity], links: Mapping[str, str]) -> list[Activity]:
    """Point each activity at its person's canonical id, in place: for activities the caller has just
    loaded, read after identity was resolved (`links`: `IdentityResult.person_links`)."""
    return _with_person_ids(activities, links, in_place=True)


def resolve_identity(
    people: Sequence[Person],
    accounts: Sequence[Account],
    activities: Sequence[Activity] = (),
    opportunities: Sequence[Opportunity] = (),
    *,
    repoint_in_place: bool = False,
) -> IdentityResult:
    """Merge CRM-qualified people and accounts into canonical ones and re-point what refers to them.

    The given records are left as they are, unless `repoint_in_place`: then the activities are
    re-pointed by setting their person id, for a caller that owns them (just loaded, not hashed or
    shared), which saves copying them (see `_with_person_ids`)."""
    conflicts: list[IdentityConflict] = []
    people_per_account: dict[str, int] = defaultdict(int)
    for person in people:
        qualified = _qualify(person.account_id, "hs-company" if person.id.startswith("hs-") else "sf-account")
        if qualified:
            people_per_account[qualified] += 1
    account_links, domain_ids, merged_accounts = _link_accounts(accounts, people_per_account, conflicts)

    person_links, merged_people = _link_people(people, account_links, domain_ids, conflicts)

    repointed_activities = _with_person_ids(activities, person_links, in_place=repoint_in_place)
    repointed_opportunities = [repoint_opportunity(o, account_links, person_links) for o in opportunities]
    return IdentityResult(
        people=merged_people, accounts=merged_accounts, activities=repointed_activities,
        opportunities=repointed_opportunities, links={**account_links, **person_links}, conflicts=conflicts,
        person_links=person_links,
    )


def repoint_opportunity(opportunity: Opportunity, account_links: Mapping[str, str],
                        person_links: Mapping[str, str]) -> Opportunity:
    """An opportunity pointing at the canonical account and people its CRM ids are linked to."""
    hubspot = opportunity.id.startswith("hs-")
    account = _qualify(opportunity.account_id, "hs-company" if hubspot else "sf-account")
    contacts = (_qualify(c, "hs-contact" if hubspot else "sf-contact") for c in opportunity.contact_ids)
    return _with(
        opportunity,
        account_id=account_links.get(account, account) if account else None,
        contact_ids=tuple(dict.fromkeys(person_links.get(c, c) for c in contacts if c)),
    )


def _link_people(people: Sequence[Person], account_links: dict[str, str], domain_ids: dict[str, str],
                 conflicts: list[IdentityConflict]) -> tuple[dict[str, str], list[Person]]:
    """(links person id → canonical id, merged people): joined by email, by the integration's
    cross-ids, and converted leads to their contacts, in that order."""
    by_id = {p.id: p for p in people}
    converted = {p.id: _qualify(p.attributes["converted_to"], "sf-contact") or "" for p in people
                 if source_of(p.id) == "sf-lead" and p.attributes.get("converted_to")}
    active = [p for p in people if p.id not in converted]
    groups = _PersonGroups(by_id, {p.id: ({p.email} if p.email and p.id not in converted else set())
                                   for p in people})
    by_email = _join_by_email(active, groups, conflicts)
    _join_by_cross_ids(active, by_id, converted, groups, conflicts)
    _join_converted_leads(converted, by_id, by_email, groups, conflicts)
    return _merged_people(groups, by_id, converted, by_email, account_links, domain_ids)


class _PersonGroups(_Groups):
    """Union-find over person ids that also knows each group's emails (a converted lead's email is
    not its own: it belongs to the contact it became)."""

    def __init__(self, ids: Iterable[str], emails: dict[str, set[str]]) -> None:
        super().__init__(ids)
        self.emails = emails

    def join(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        root = self.union(ra, rb)
        self.emails[root] = self.emails[ra] | self.emails[rb]
        return root

    def emails_of(self, person_id: str) -> set[str]:
        return self.emails[self.find(person_id)]


def _join_by_email(active: list[Person], groups: _PersonGroups,
                   conflicts: list[IdentityConflict]) -> dict[str, list[str]]:
    """Join the people who share an email; returns the person ids by email. Records of one CRM object
    sharing an email are recorded as a conflict (and still joined)."""
    by_email: dict[str, list[str]] = defaultdict(list)
    for person in active:
        if person.email:
            by_email[person.email].append(person.id)
    for email, ids in by_email.items():
        for other in ids[1:]:
            groups.join(ids[0], other)
        per_source: dict[str, list[str]] = defaultdict(list)
        for i in ids:
            per_source[source_of(i)].append(i)
        for source, same in sorted(per_source.items()):
            if len(same) > 1:
                conflicts.append(IdentityConflict(
                    DUPLICATE_EMAIL, tuple(sorted(same)),
                    f"{len(same)} {source or 'other'} records share the email {email}; merged as one "
                    "person, leadloop writes to the most recently updated"))
    return by_email


def _join_by_cross_ids(active: list[Person], by_id: dict[str, Person], converted: dict[str, str],
                       groups: _PersonGroups, conflicts: list[IdentityConflict]) -> None:
    """Join each HubSpot contact to the Salesforce record its cross-ids name, unless their emails
    disagree (a conflict, like a cross-id naming no pulled record)."""
    sf_ids = _sf_index(by_id)
    for person in active:
        if source_of(person.id) != "hs-contact":
            continue
        for attribute, source in _PERSON_CROSS_IDS:
            raw = person.attributes.get(attribute)
            if not raw:
                continue
            target = sf_ids.get((source, raw.strip()[:15]))
            if target is None:
                conflicts.append(IdentityConflict(CROSS_ID_UNKNOWN, (person.id,),
                                                  f"{attribute} {raw} names no pulled {source[3:]}"))
                continue
            target = converted.get(target, target) if converted.get(target) in by_id else target
            mine, theirs = groups.emails_of(person.id), groups.emails_of(target)
            if mine and theirs and mine != theirs:
                conflicts.append(IdentityConflict(
                    CROSS_ID_EMAIL_MISMATCH, (person.id, target),
                    f"HubSpot contact ({', '.join(sorted(mine))}) names {target} "
                    f"({', '.join(sorted(theirs))}) in {attribute}; not merged"))
                continue
            groups.join(person.id, target)


def _join_converted_leads(converted: dict[str, str], by_id: dict[str, Person], by_email: dict[str, list[str]],
                          groups: _PersonGroups, conflicts: list[IdentityConflict]) -> None:
    """Join each converted lead to its contact; when the contact was not pulled (a conflict), to the
    people with the lead's email, if any."""
    for lead_id, contact_id in converted.items():
        if contact_id in by_id and contact_id not in converted:
            groups.join(contact_id, lead_id)
            continue
        conflicts.append(IdentityConflict(CONVERTED_LEAD_WITHOUT_CONTACT, (lead_id,),
                                          f"converted to {contact_id}, which was not pulled"))
        email = by_id[lead_id].email
        if email and by_email.get(email):
            groups.join(by_email[email][0], lead_id)


def _merged_people(groups: _PersonGroups, by_id: dict[str, Person], converted: dict[str, str],
                   by_email: dict[str, list[str]], account_links: dict[str, str],
                   domain_ids: dict[str, str]) -> tuple[dict[str, str], list[Person]]:
    """One canonical person per group, sorted by id, and the links of its members to it."""
    links: dict[str, str] = {}
    merged: list[Person] = []
    for root, member_ids in groups.groups().items():
        members = sorted((by_id[i] for i in member_ids), key=lambda p: _person_precedence(p, converted))
        group_emails = groups.emails[root]
        email = min(group_emails) if group_emails else None
        if email is None:  # only converted leads know an email; use it unless someone else owns it
            email = next((p.email for p in members if p.email and p.email not in by_email), None)
        canonical = f"person:{email}" if email else members[0].id
        for member in members:
            links[member.id] = canonical
        merged.append(_merge_person(canonical, email, members, converted, account_links, domain_ids))
    merged.sort(key=lambda p: p.id)
    return links, merged


def _person_precedence(person: Person, converted: Mapping[str, str]) -> tuple[bool, int, float, str]:
    return (person.id in converted, _PERSON_RANK.get(source_of(person.id), 9), -_recency(person).timestamp(),
            person.id)


def merge_person_group(canonical: str, email: str | None, members: Sequence[Person],
                       account_links: Mapping[str, str], domain_ids: Mapping[str, str]) -> Person | None:
    """The canonical person `canonical` (with `email`) of one group of CRM people that identity linked
    to it, by the module's precedence: for a group whose links are known already (an hourly run whose
    change left identity's inputs alone, `identity_key`). `account_links`: the accounts' links;
    `domain_ids`: email domain → the account that took it. None when the group's canonical id rests
    on more than its links (`resolve_identity` must merge the store): a group whose email is only a
    converted lead's (which email depends on who else has one), or one without an email whose first
    member is no longer `canonical` (the most recently updated of two records of one object)."""
    converted = {p.id: _qualify(p.attributes["converted_to"], "sf-contact") or "" for p in members
                 if source_of(p.id) == "sf-lead" and p.attributes.get("converted_to")}
    ordered = sorted(members, key=lambda p: _person_precedence(p, converted))
    if not ordered:
        return None
    if email is not None:
        active = any(p.email == email and p.id not in converted for p in ordered)
        if canonical != f"person:{email}" or not active:
            return None
    elif ordered[0].id != canonical:
        return None
    return _merge_person(canonical, email, ordered, converted, account_links, domain_ids)


def identity_key(record: Person | Account) -> str:
    """What identity reads of a CRM person or account to link it (not to merge its values): a person's
    email, account, cross-ids and conversion; an account's domain and cross-id. Records whose keys
    are all as at the last merge, none added or removed, keep that merge's links and conflicts."""
    if isinstance(record, Person):
        names = ("converted_to", "salesforcecontactid", "salesforceleadid")
        values = [record.email, record.account_id, *(record.attributes.get(name) for name in names)]
    else:
        values = [record.domain, record.attributes.get("salesforceaccountid")]
    return "\x1f".join("" if value is None else str(value) for value in values)


def _merge_person(canonical: str, email: str | None, members: Sequence[Person], converted: Mapping[str, str],
                  account_links: Mapping[str, str], domain_ids: Mapping[str, str]) -> Person:
    live = [p for p in members if p.id not in converted] or list(members)
    values = {name: _first(live, name) for name in _PROFILE_FIELDS}
    by_recency = sorted(live, key=lambda p: -_recency(p).timestamp())
    by_creation = sorted(live, key=lambda p: (p.created_at or datetime.max.replace(tzinfo=UTC)))

    def raw_id(source: str, attribute: str) -> str | None:
        record = next((p for p in live if source_of(p.id) == source and p.id not in converted), None)
        return (getattr(record, attribute) or _raw(record.id)) if record else None

    account_id, matched_by = None, None
    for person in live:
        qualified = _qualify(person.account_id,
                             "hs-company" if source_of(person.id) == "hs-contact" else "sf-account")
        if qualified and qualified in account_links:
            account_id, matched_by = account_links[qualified], "crm"
            break
    domain = email.rsplit("@", 1)[1] if email else None
    if account_id is None and (by_domain := account_by_email_domain(domain, domain_ids)) is not None:
        account_id, matched_by = by_domain, "email_domain"

    attributes = _merged_attributes(members)
    attributes.pop("converted_to", None)
    if matched_by == "email_domain":
        attributes["account_match"] = "email_domain"
    created = [p.created_at for p in members if p.created_at]
    updated = [p.updated_at for p in members if p.updated_at]
    return _with(
        live[0], id=canonical, email=email, email_domain=domain, account_id=account_id,
        lifecycle_status=_first(by_recency, "lifecycle_status"),
        lead_source=_first(by_creation, "lead_source"),
        salesforce_contact_id=raw_id("sf-contact", "salesforce_contact_id"),
        salesforce_lead_id=raw_id("sf-lead", "salesforce_lead_id"),
        hubspot_id=raw_id("hs-contact", "hubspot_id"),
        attributes=attributes, created_at=min(created) if created else None,
        updated_at=max(updated) if updated else None,
        **values, **{flag: any(getattr(p, flag) for p in members) for flag in _ANY_FLAGS},
    )
