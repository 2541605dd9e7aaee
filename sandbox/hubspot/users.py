"""The settings users API, how a portal admin (or an app with the `settings.users.write` scope) adds,
changes and removes users: list, read (by user id or email), create, replace, delete, and the portal's
roles and teams. Every user is also a CRM owner, as in HubSpot: creating a user makes an owner appear
at `/crm/v3/owners/`, deleting one archives its owner, and adding the same email again brings that
owner back.

https://developers.hubspot.com/docs/api/settings/user-provisioning
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot.errors import HubSpotError, json_response, not_found, validation_error
from leadloop.sandbox.hubspot.loader import OWNER_ID_BASE, USER_ID_BASE
from leadloop.sandbox.hubspot.portal import Portal, body_json, query_int
from leadloop.sandbox.hubspot.store import Store, iso_ms, valid_email

BASE = "/settings/v3/users"
# A portal's roles are its own; the sandbox's portal has these three. The seeded reps are sales reps.
ROLES = (
    {"id": "1001", "name": "Sales rep", "requiresBillingWrite": False},
    {"id": "1002", "name": "Sales manager", "requiresBillingWrite": False},
    {"id": "1003", "name": "Marketing", "requiresBillingWrite": False},
)
SEEDED_ROLE = "1001"
_ROLE_IDS = {r["id"] for r in ROLES}


def _active_owners(store: Store) -> list[dict[str, Any]]:
    return [
        o
        for o in store.owners.values()
        if not o["archived"] and o.get("type") == "PERSON" and o.get("userId") is not None
    ]


def render_user(store: Store, owner: dict[str, Any]) -> dict[str, Any]:
    """A PublicUser: the owner's email and names, the user's role and the owner's teams."""
    user_id = str(owner["userId"])
    role_id = store.users.get(user_id, {"roleId": SEEDED_ROLE}).get("roleId")
    teams = owner.get("teams") or []
    user: dict[str, Any] = {
        "id": user_id,
        "email": owner["email"],
        "firstName": owner.get("firstName") or "",
        "lastName": owner.get("lastName") or "",
        "roleIds": [role_id] if role_id else [],
        "superAdmin": False,
    }
    if role_id:
        user["roleId"] = role_id
    primary = next((t["id"] for t in teams if t.get("primary")), None)
    if primary is not None:
        user["primaryTeamId"] = primary
    user["secondaryTeamIds"] = [t["id"] for t in teams if not t.get("primary")]
    return user


def team_names(store: Store) -> dict[str, str]:
    """Team id → name: the teams the portal's owners belong to (the seeded world's regions)."""
    names: dict[str, str] = {}
    for owner in store.owners.values():
        for team in owner.get("teams") or []:
            names.setdefault(str(team["id"]), team["name"])
    return dict(sorted(names.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0))


def _find(store: Store, user_id: str, by_email: bool) -> dict[str, Any]:
    for owner in _active_owners(store):
        if (owner["email"].lower() == user_id.lower()) if by_email else str(owner["userId"]) == user_id:
            return owner
    raise not_found(f"User {user_id} not found", ids=[user_id])


def _settings(
    store: Store, body: dict[str, Any], *, current: dict[str, Any] | None = None
) -> tuple[str | None, list[dict[str, Any]] | None]:
    """The role and the owner's teams a create or replace body asks for (None: teams unchanged)."""
    role_id = body.get("roleId", (current or {}).get("roleId"))
    if role_id is not None and str(role_id) not in _ROLE_IDS:
        raise validation_error(
            f"Role {role_id} does not exist in this account", context={"roleId": [str(role_id)]}
        )
    if "primaryTeamId" not in body and "secondaryTeamIds" not in body:
        return (str(role_id) if role_id is not None else None), None
    names = team_names(store)
    primary = body.get("primaryTeamId")
    secondary = body.get("secondaryTeamIds") or []
    if not isinstance(secondary, list):
        raise validation_error("secondaryTeamIds must be a list of team ids")
    teams: list[dict[str, Any]] = []
    for team_id, is_primary in ([(primary, True)] if primary is not None else []) + [
        (t, False) for t in secondary
    ]:
        if str(team_id) not in names:
            raise validation_error(
                f"Team {team_id} does not exist in this account", context={"teamId": [str(team_id)]}
            )
        teams.append({"id": str(team_id), "name": names[str(team_id)], "primary": is_primary})
    return (str(role_id) if role_id is not None else None), teams


def create_user(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Provision a user and its owner; returns the owner."""
    email = body.get("email")
    if not isinstance(email, str) or not valid_email(email):
        raise validation_error(
            f"Email address {email} is invalid" if email else "email is required",
            context={"email": [str(email)]},
        )
    if any(o["email"].lower() == email.lower() for o in _active_owners(store)):
        raise HubSpotError(409, "CONFLICT", f"A user with email {email} already exists in this account")
    role_id, teams = _settings(store, body)
    now = iso_ms(store.now_ms())
    previous = next((o for o in store.owners.values() if o["email"].lower() == email.lower()), None)
    if previous is not None:  # a removed user added again gets its owner (and its records) back
        owner = previous
        owner.update({"archived": False, "updatedAt": now})
        owner["userId"] = owner.get("userIdIncludingInactive") or owner.get("userId")
    else:
        owner_ids = [int(i) for i in store.owners if i.isdigit()]
        user_ids = [
            int(o["userIdIncludingInactive"])
            for o in store.owners.values()
            if o.get("userIdIncludingInactive") is not None
        ]
        user_id = max(user_ids, default=USER_ID_BASE - 1) + 1
        owner = {
            "id": str(max(owner_ids, default=OWNER_ID_BASE - 1) + 1),
            "email": email,
            "firstName": str(body.get("firstName") or ""),
            "lastName": str(body.get("lastName") or ""),
            "userId": user_id,
            "userIdIncludingInactive": user_id,
            "type": "PERSON",
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
            "teams": [],
        }
        store.owners[owner["id"]] = owner
    if teams is not None:
        owner["teams"] = teams
    for name in ("firstName", "lastName"):
        if body.get(name):
            owner[name] = str(body[name])
    store.users[str(owner["userId"])] = {"roleId": role_id}
    return owner


def add_routes(router: APIRouter, portal: Portal) -> None:
    @router.get(BASE + "/roles")
    async def roles() -> Response:
        return json_response({"results": list(ROLES)})

    @router.get(BASE + "/teams")
    async def teams() -> Response:
        store = portal.store
        members: dict[str, tuple[list[str], list[str]]] = {t: ([], []) for t in team_names(store)}
        for owner in _active_owners(store):
            for team in owner.get("teams") or []:
                members[str(team["id"])][0 if team.get("primary") else 1].append(str(owner["userId"]))
        return json_response(
            {
                "results": [
                    {
                        "id": team_id,
                        "name": name,
                        "userIds": members[team_id][0],
                        "secondaryUserIds": members[team_id][1],
                    }
                    for team_id, name in team_names(store).items()
                ]
            }
        )

    @router.get(BASE)
    @router.get(BASE + "/")  # the official client asks with the slash
    async def list_users(request: Request) -> Response:
        store = portal.store
        owners = _active_owners(store)
        limit = query_int(request, "limit", 100, 100)
        raw_after = request.query_params.get("after") or "0"
        if not raw_after.isdigit():
            raise validation_error(f"Invalid paging cursor: {raw_after}")
        after = int(raw_after)
        body: dict[str, Any] = {"results": [render_user(store, o) for o in owners[after : after + limit]]}
        if after + limit < len(owners):
            following = str(after + limit)
            body["paging"] = {
                "next": {
                    "after": following,
                    "link": f"{portal.ctx.base_url}{BASE}/?after={following}&limit={limit}",
                }
            }
        portal.read("GET /settings/v3/users", len(body["results"]))
        return json_response(body)

    @router.post(BASE)
    @router.post(BASE + "/")
    async def create(request: Request) -> Response:
        body = await body_json(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object with 'email'")
        owner = create_user(portal.store, body)
        portal.written("POST /settings/v3/users", 1)
        return json_response(render_user(portal.store, owner), 201)

    @router.get(BASE + "/{user_id}")
    async def get_user(request: Request, user_id: str) -> Response:
        by_email = (request.query_params.get("idProperty") or "USER_ID").upper() == "EMAIL"
        owner = _find(portal.store, user_id, by_email)
        portal.read("GET /settings/v3/users/{userId}", 1)
        return json_response(render_user(portal.store, owner))

    @router.put(BASE + "/{user_id}")
    async def replace(request: Request, user_id: str) -> Response:
        store = portal.store
        by_email = (request.query_params.get("idProperty") or "USER_ID").upper() == "EMAIL"
        owner = _find(store, user_id, by_email)
        body = await body_json(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        key = str(owner["userId"])
        role_id, teams = _settings(store, body, current=store.users.get(key, {"roleId": SEEDED_ROLE}))
        store.users[key] = {"roleId": role_id}
        if teams is not None:
            owner["teams"] = teams
        for name in ("firstName", "lastName"):
            if body.get(name):
                owner[name] = str(body[name])
        owner["updatedAt"] = iso_ms(store.now_ms())
        portal.written("PUT /settings/v3/users/{userId}", 1)
        return json_response(render_user(store, owner))

    @router.delete(BASE + "/{user_id}")
    async def remove(request: Request, user_id: str) -> Response:
        store = portal.store
        by_email = (request.query_params.get("idProperty") or "USER_ID").upper() == "EMAIL"
        owner = _find(store, user_id, by_email)
        # The owner stays (records keep pointing at it), archived: `/crm/v3/owners?archived=true` lists it.
        owner.update({"archived": True, "updatedAt": iso_ms(store.now_ms())})
        store.users.pop(str(owner["userId"]), None)
        portal.written("DELETE /settings/v3/users/{userId}", 1)
        return Response(status_code=204)
