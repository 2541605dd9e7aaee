"""How form submissions reach HubSpot: forms made through the forms API (`POST /marketing/v3/forms/`) and
submitted through the forms submission API, the one a website's own form handler or a marketing
automation tool calls:

- `POST /submissions/v3/integration/submit/{portalId}/{formGuid}`: no authentication (HubSpot serves
  it at api.hsforms.com; the sandbox at its one address);
- `POST /submissions/v3/integration/secure/submit/{portalId}/{formGuid}`: the same with a bearer token.

A submission creates the contact its email names, or updates it with the submitted values, and is
recorded where HubSpot lists it: `GET /form-integrations/v1/submissions/forms/{formGuid}`
(sandbox.hubspot.activity), which is what leadloop pulls.

https://developers.hubspot.com/docs/api-reference/legacy/marketing/forms/v3-legacy/submit-data-unauthenticated
https://developers.hubspot.com/docs/api-reference/legacy/marketing/forms/v3-legacy/submit-data-authenticated
https://developers.hubspot.com/docs/api/marketing/forms
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot.activity import PORTAL_ID
from leadloop.sandbox.hubspot.errors import HubSpotError, correlation_id, json_response, validation_error
from leadloop.sandbox.hubspot.portal import Portal, body_json
from leadloop.sandbox.hubspot.store import Store, iso_ms, parse_datetime_ms, valid_email

SUBMIT = "/submissions/v3/integration/submit/{portal_id}/{form_guid}"
SECURE_SUBMIT = "/submissions/v3/integration/secure/submit/{portal_id}/{form_guid}"
PUBLIC_PREFIX = "/submissions/v3/integration/submit/"
MAX_FIELDS = 1000
MAX_VALUE_CHARS = 65_536
CONTEXT_KEYS = frozenset(
    {"hutk", "ipAddress", "pageUri", "pageName", "pageId", "sfdcCampaignId", "goToWebinarWebinarKey"}
)
_HUTK = re.compile(r"^[0-9a-f]{32}$")  # the hubspotutk cookie: 32 hex digits
_REQUIRED_FORM_PARTS = ("fieldGroups", "configuration", "displayOptions", "legalConsentOptions")
_OBJECT_TYPES = {"0-1": "contacts", "0-2": "companies"}


# ---- forms ----------------------------------------------------------------------------------------


def create_form(store: Store, body: Any) -> dict[str, Any]:
    """A HubSpot form from a forms v3 create body (the definition, with an id and timestamps)."""
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected a form definition object")
    if body.get("formType") != "hubspot":
        raise validation_error(
            f"formType must be hubspot, was {body.get('formType')!r}: only HubSpot forms "
            "can be created through the API",
            context={"formType": [str(body.get("formType"))]},
        )
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise validation_error("name is required", context={"name": [str(name)]})
    missing = [part for part in _REQUIRED_FORM_PARTS if not isinstance(body.get(part), dict | list)]
    if missing:
        raise validation_error(
            f"Missing required field(s): {', '.join(missing)}", context={"missing": missing}
        )
    if not isinstance(body["fieldGroups"], list):
        raise validation_error("fieldGroups must be a list of field groups")
    for group in body["fieldGroups"]:
        fields = group.get("fields") if isinstance(group, dict) else None
        if not isinstance(fields, list):
            raise validation_error("each field group needs a list of fields")
        for field in fields:
            _check_form_field(store, field)
    now = iso_ms(store.now_ms())
    form = {
        "id": str(uuid.uuid4()),
        "name": name,
        "createdAt": now,
        "updatedAt": now,
        "archived": False,
        "formType": "hubspot",
        **{part: body[part] for part in _REQUIRED_FORM_PARTS},
    }
    store.forms[form["id"]] = form
    store.submissions[form["id"]] = []
    return form


def _check_form_field(store: Store, field: Any) -> None:
    """A form field names a property of its object: HubSpot forms write what is submitted into it."""
    if not isinstance(field, dict) or not isinstance(field.get("name"), str) or not field.get("fieldType"):
        raise validation_error("each form field needs a name and a fieldType")
    object_name = _OBJECT_TYPES.get(str(field.get("objectTypeId") or ""))
    if object_name is None:
        raise validation_error(
            f"Field {field['name']}: objectTypeId must be one of {', '.join(_OBJECT_TYPES)}"
        )
    if field["name"] not in store.properties[object_name]:
        raise validation_error(
            f"Field {field['name']}: property {field['name']} does not exist on {object_name}",
            context={"propertyName": [field["name"]]},
        )


def form_fields(form: dict[str, Any]) -> list[dict[str, Any]]:
    return [field for group in form.get("fieldGroups") or [] for field in group.get("fields") or []]


# ---- submissions --------------------------------------------------------------------------------------


def _problem(field: str | None, error_type: str, message: str) -> dict[str, str]:
    where = f"Error in '{field}'. " if field else ""
    return {"message": where + message, "errorType": error_type}


def _invalid(problems: list[dict[str, str]]) -> Response:
    """The forms submission API's 400: its own `errors` list of `errorType`s, no category."""
    return json_response(
        {
            "status": "error",
            "message": "The request is not valid",
            "correlationId": correlation_id(),
            "errors": problems,
        },
        400,
    )


def _form_not_found(portal_id: str, form_guid: str) -> Response:
    return json_response(
        {
            "status": "error",
            "message": f"Form {form_guid} does not exist in portal {portal_id}",
            "correlationId": correlation_id(),
            "errors": [],
        },
        404,
    )


def _submitted_values(body: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[dict[str, str]]]:
    """(objectTypeId, name, value) of each submitted field, and the problems of their shape."""
    fields = body.get("fields")
    if not isinstance(fields, list):
        return [], [_problem("fields", "REQUIRED_FIELD", "fields must be a list of {name, value}")]
    if len(fields) > MAX_FIELDS:
        return [], [
            _problem(
                "fields",
                "MAX_NUMBER_OF_SUBMITTED_VALUES_EXCEEDED",
                f"{len(fields)} values were submitted, the maximum is {MAX_FIELDS}",
            )
        ]
    values: list[tuple[str, str, str]] = []
    problems: list[dict[str, str]] = []
    for field in fields:
        if not isinstance(field, dict) or not isinstance(field.get("name"), str):
            problems.append(_problem("fields", "INVALID_METADATA", "each field needs a name and a value"))
            continue
        value = "" if field.get("value") is None else str(field["value"])
        if len(value) > MAX_VALUE_CHARS:
            problems.append(
                _problem(
                    f"fields.{field['name']}",
                    "INPUT_TOO_LARGE",
                    f"The value is longer than {MAX_VALUE_CHARS} characters",
                )
            )
            continue
        values.append((str(field.get("objectTypeId") or "0-1"), field["name"], value))
    return values, problems


def _context_problems(context: Any) -> list[dict[str, str]]:
    if context is None:
        return []
    if not isinstance(context, dict):
        return [_problem("context", "INVALID_METADATA", "context must be an object")]
    problems = [
        _problem(f"context.{key}", "INVALID_METADATA", f"Unknown context field '{key}'")
        for key in context
        if key not in CONTEXT_KEYS
    ]
    hutk = context.get("hutk")
    if hutk is not None and not _HUTK.match(str(hutk)):
        problems.append(
            _problem("context.hutk", "INVALID_HUTK", "The hutk is not a valid HubSpot tracking cookie value")
        )
    return problems


def _form_problems(
    form: dict[str, Any], values: list[tuple[str, str, str]], skip_validation: bool
) -> list[dict[str, str]]:
    defined = {(str(f.get("objectTypeId") or "0-1"), f["name"]): f for f in form_fields(form)}
    problems: list[dict[str, str]] = []
    submitted = {(object_type, name): value for object_type, name, value in values}
    if not skip_validation:
        problems += [
            _problem(
                f"fields.{name}",
                "FIELD_NOT_IN_FORM_DEFINITION",
                f"The field '{name}' is not in the form definition",
            )
            for object_type, name in submitted
            if (object_type, name) not in defined
        ]
        problems += [
            _problem(f"fields.{name}", "REQUIRED_FIELD", f"Required field '{name}' is missing")
            for (object_type, name), field in defined.items()
            if field.get("required") and not submitted.get((object_type, name), "").strip()
        ]
    email = submitted.get(("0-1", "email"))
    if email and not valid_email(email.strip()):
        problems.append(_problem("fields.email", "INVALID_EMAIL", "Invalid email address"))
    return problems


def _contact_values(
    store: Store, values: list[tuple[str, str, str]]
) -> tuple[dict[str, str | None], list[dict[str, str]]]:
    """The submitted contact properties in HubSpot's stored form, and the values a property refuses."""
    definitions = store.properties["contacts"]
    out: dict[str, str | None] = {}
    problems: list[dict[str, str]] = []
    for object_type, name, value in values:
        definition = definitions.get(name)
        if object_type != "0-1" or definition is None or definition.read_only or value == "":
            continue
        if name == "email" and not valid_email(value.strip()):
            continue  # reported as INVALID_EMAIL
        try:
            out.update(store.normalize("contacts", {name: value.strip() if name == "email" else value}))
        except HubSpotError:
            kind = "INVALID_NUMBER" if definition.type == "number" else "VALUE_NOT_IN_FIELD_DEFINITION"
            problems.append(
                _problem(f"fields.{name}", kind, f"'{value[:80]}' is not a valid value of {name}")
            )
    return out, problems


def submit(portal: Portal, form: dict[str, Any], body: dict[str, Any]) -> Response:
    """Validate a submission; record it and create or update its contact; HubSpot's answer."""
    store = portal.store
    values, problems = _submitted_values(body)
    context = body.get("context")
    problems += _context_problems(context)
    problems += _form_problems(form, values, bool(body.get("skipValidation")))
    contact_values, refused = _contact_values(store, values)
    problems += refused
    submitted_at = body.get("submittedAt")
    moment = parse_datetime_ms(submitted_at) if submitted_at not in (None, "") else store.now_ms()
    if moment is None:
        problems.append(_problem("submittedAt", "INVALID_METADATA", "submittedAt must be epoch milliseconds"))
    if problems:
        return _invalid(problems)
    assert moment is not None
    email = contact_values.get("email")
    if email:
        _upsert_contact(portal, form, email, contact_values)
    page = (context or {}).get("pageUri")
    store.add_submission(form["id"], (moment, str(uuid.uuid4()), page, [(n, v) for _t, n, v in values]))
    portal.written("POST /submissions/v3/integration/submit/{portalId}/{formGuid}", 1)
    action = (form.get("configuration") or {}).get("postSubmitAction") or {}
    if action.get("type") == "redirect_url":
        return json_response({"redirectUri": action.get("value")})
    return json_response({"inlineMessage": action.get("value") or "Thanks for submitting the form."})


def _upsert_contact(portal: Portal, form: dict[str, Any], email: str, values: dict[str, str | None]) -> None:
    """The form writes what was submitted into the contact with that email, or makes that contact,
    giving it the form's lifecycle stage when it has none yet."""
    store = portal.store
    stage = next(
        (
            s.get("value")
            for s in (form.get("configuration") or {}).get("lifecycleStages") or []
            if s.get("objectTypeId") == "0-1" and s.get("value")
        ),
        None,
    )
    contact = store.find_by("contacts", "email", email)
    if contact is None:
        store.create("contacts", {**values, **({"lifecyclestage": stage} if stage else {})}, portal.lag())
    else:
        if stage and not contact.props.get("lifecyclestage"):
            values = {**values, "lifecyclestage": stage}
        store.update("contacts", contact, values, portal.lag())


def add_routes(router: APIRouter, portal: Portal, public: APIRouter) -> None:
    """Forms create and the authenticated submission on `router`; the unauthenticated submission on
    `public`, whose calls HubSpot does not count against the app's rate limits."""

    @router.post("/marketing/v3/forms")
    @router.post("/marketing/v3/forms/")
    async def create(request: Request) -> Response:
        form = create_form(portal.store, await body_json(request))
        portal.written("POST /marketing/v3/forms", 1)
        return json_response(form, 201)

    async def receive(request: Request, portal_id: str, form_guid: str) -> Response:
        form = portal.store.forms.get(form_guid)
        if portal_id != str(PORTAL_ID) or form is None or form.get("archived"):
            return _form_not_found(portal_id, form_guid)
        try:
            body = await body_json(request)
        except HubSpotError as error:
            return _invalid([_problem(None, "INVALID_METADATA", error.message)])
        if not isinstance(body, dict):
            return _invalid([_problem(None, "INVALID_METADATA", "The body must be a JSON object")])
        return submit(portal, form, body)

    public.add_api_route(SUBMIT, receive, methods=["POST"])
    router.add_api_route(SECURE_SUBMIT, receive, methods=["POST"])
