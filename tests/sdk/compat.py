#!/usr/bin/env python3
"""Does a script written against the official `anthropic` SDK see the simulator answer as the
real Admin API would?

Usage: compat.py BASE_URL            (or ORGKEEPER_SIM_URL=... compat.py)

Needs `anthropic==2.10.0` (the SDK whose types are the ground truth for shapes). Every call goes
through the SDK's own resource methods (`client.organization.*`, a few through
`client.beta.organization.*`), fields are read through the typed models' attributes, and because
the SDK builds its models leniently (a missing or mistyped field does not raise), every raw JSON
body is also validated strictly with `Model.model_validate` against the SDK's own type.

The messages usage report, the cost report and the Claude Code report have no method and no type
in anthropic 2.10.0 (its `analytics.*` reports are other endpoints); they are called with the
SDK's generic `client.get` and checked against shared/admin-api.md §5.7-5.9.

Prints one line per check and a final line `N passed, M failed`; exits 1 on any failure.
A check listed in KNOWN_MISMATCHES that fails is printed as KNOWN-MISMATCH and not counted as a
failure (ORGKEEPER_SDK_STRICT=1 counts it); each one is reported to the simulator's owner.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
import datetime as dt
import traceback
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, List, Literal, Optional, Union

try:
    import anthropic
    import pydantic
    from anthropic._models import BaseModel as SDKModel
except ImportError as e:  # pragma: no cover
    print(f"FAIL import anthropic: {e} (pip install anthropic==2.10.0)")
    print("0 passed, 1 failed")
    sys.exit(1)

from anthropic.types import OrganizationInfo
from anthropic.types.shared.error_response import ErrorResponse
from anthropic.types.organization import (
    APIKey,
    InviteDeleteResponse,
    OrganizationInvite,
    OrganizationRateLimit,
    OrganizationUser,
    UserRemoveResponse,
    Workspace,
    WorkspaceMember,
)
from anthropic.types.organization.workspaces import MemberRemoveResponse, WorkspaceRateLimit
from anthropic.types.organization import SpendLimit
from anthropic.types.beta.organization import (
    BetaSpendLimit,
    BetaSpendLimitsAdminAPIWritesNotEnabledError,
    SpendLimitDeleteResponse,
)
from anthropic.types.shared.organization_type_not_supported_error import OrganizationTypeNotSupportedError
from anthropic.types.beta import BetaOrganization
from anthropic.types.beta.organization.analytics import BetaAnalyticsCostItem, BetaAnalyticsUsageItem
from anthropic.types.beta.organization import (
    BetaAPIKey,
    BetaOrganizationRateLimit,
    BetaOrganizationUser,
    BetaWorkspace,
)

SDK_VERSION = "2.10.0"
ADMIN_KEY = "sk-ant-admin01-sdkcompat-" + "A" * 40
NON_ADMIN_KEY = "sk-ant-api03-sdkcompat-" + "B" * 40
STRICT = os.environ.get("ORGKEEPER_SDK_STRICT", "") not in ("", "0")

# Checks that fail because the simulator disagrees with the SDK, each reported to the owner of
# src/simulator/. Remove an entry as soon as its check passes.
KNOWN_MISMATCHES: Dict[str, str] = {}

RUN = uuid.uuid4().hex[:10]
passed = 0
failed = 0
known = 0
notes: List[str] = []


def check(name: str) -> Callable[[Callable[[], Optional[str]]], None]:
    """Runs the decorated function at once as one check."""

    def run(fn: Callable[[], Optional[str]]) -> None:
        global passed, failed, known
        try:
            detail = fn()
        except Exception as e:  # noqa: BLE001 - any exception is a failed check
            reason = f"{type(e).__name__}: {e}".replace("\n", " | ")
            if len(reason) > 900:
                reason = reason[:900] + "..."
            if name in KNOWN_MISMATCHES and not STRICT:
                known += 1
                print(f"KNOWN-MISMATCH {name}: {reason}")
            else:
                failed += 1
                print(f"FAIL {name}: {reason}")
                if os.environ.get("ORGKEEPER_SDK_TRACEBACK"):
                    traceback.print_exc()
            return
        passed += 1
        print(f"PASS {name}" + (f" ({detail})" if detail else ""))
        if name in KNOWN_MISMATCHES:
            print(f"note: '{name}' is listed as a known mismatch but passes; remove it")

    return run


def ensure(cond: Any, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


# ---------------------------------------------------------------------------------------------
# Strict shape validation with the SDK's own types


def extras(obj: Any, path: str = "") -> List[str]:
    """Keys present in the JSON but not declared by the SDK type (recursively)."""
    out: List[str] = []
    if isinstance(obj, pydantic.BaseModel):
        for k in (obj.model_extra or {}):
            out.append(f"{path}.{k}" if path else k)
        for k in type(obj).model_fields:
            out += extras(getattr(obj, k, None), f"{path}.{k}" if path else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:1]):
            out += extras(v, f"{path}[]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += extras(v, f"{path}.{k}")
    return out


def validate(model: Any, data: Any, where: str, note_extras: bool = True) -> Any:
    """Strict pydantic validation of raw JSON against an SDK model; notes undeclared fields."""
    try:
        m = model.model_validate(data)
    except pydantic.ValidationError as e:
        errs = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in e.errors()[:6]
        )
        raise AssertionError(f"{where}: JSON does not match {model.__name__}: {errs}") from None
    for x in extras(m) if note_extras else []:
        note = f"{where}: field '{x}' is not in the SDK's {model.__name__} type"
        if note not in notes:
            notes.append(note)
    return m


def validate_page(raw: Any, item_model: Any, where: str) -> Any:
    """An ID-cursor page: {data, has_more, first_id, last_id} (§3.1)."""
    body = raw.json()
    ensure(isinstance(body, dict), f"{where}: body is not an object")
    ensure(isinstance(body.get("data"), list), f"{where}: data is not a list")
    ensure(isinstance(body.get("has_more"), bool), f"{where}: has_more is not a bool: {body.get('has_more')!r}")
    for item in body["data"]:
        validate(item_model, item, where)
    if body["data"]:
        ensure(body.get("first_id") == body["data"][0]["id" if "id" in body["data"][0] else "user_id"],
               f"{where}: first_id {body.get('first_id')!r} is not the first item's id")
        ensure(body.get("last_id") == body["data"][-1]["id" if "id" in body["data"][-1] else "user_id"],
               f"{where}: last_id {body.get('last_id')!r} is not the last item's id")
    return raw.parse()


def validate_cursor_page(raw: Any, item_model: Any, where: str) -> Any:
    """A page-cursor page: {data, next_page} (§3.3)."""
    body = raw.json()
    ensure(isinstance(body.get("data"), list), f"{where}: data is not a list")
    ensure("next_page" in body, f"{where}: next_page missing")
    ensure(body["next_page"] is None or isinstance(body["next_page"], str), f"{where}: next_page not a string/null")
    for item in body["data"]:
        validate(item_model, item, where)
    return raw.parse()


def aware(t: Any, what: str) -> dt.datetime:
    ensure(isinstance(t, dt.datetime), f"{what} is not a datetime: {t!r}")
    ensure(t.tzinfo is not None and t.utcoffset() == dt.timedelta(0), f"{what} is not UTC: {t!r}")
    return t


def request_id_ok(rid: Optional[str], what: str) -> None:
    ensure(isinstance(rid, str) and rid.startswith("req_"), f"{what}: request-id header {rid!r}")


def expect_error(exc: type, fn: Callable[[], Any], error_type: str, status: int) -> Any:
    """Calls fn, expects the SDK to raise `exc`; checks the envelope and request id."""
    try:
        fn()
    except exc as e:  # type: ignore[misc]
        ensure(e.status_code == status, f"status {e.status_code}, expected {status}")
        ensure(e.type == error_type, f"error.type {e.type!r}, expected {error_type!r}")
        request_id_ok(e.request_id, "error")
        # error.details is read by the SDK (APIStatusError.error_code) though ErrorObject omits it.
        body = validate(ErrorResponse, e.body, "error body", note_extras=False)
        ensure(body.request_id == e.request_id,
               f"body request_id {body.request_id!r} != request-id header {e.request_id!r}")
        ensure(isinstance(e.api_message, str) and e.api_message, "error.message is empty")
        return e
    except anthropic.APIStatusError as e:
        raise AssertionError(
            f"expected {exc.__name__}, SDK raised {type(e).__name__} {e.status_code}: {e.body}"
        ) from None
    raise AssertionError(f"expected {exc.__name__}, the call succeeded")


# ---------------------------------------------------------------------------------------------
# Shapes of the reports anthropic 2.10.0 does not type (shared/admin-api.md §5.7-5.9)


class CacheCreation(SDKModel):
    ephemeral_1h_input_tokens: int
    ephemeral_5m_input_tokens: int


class ServerToolUse(SDKModel):
    web_search_requests: int


class UsageResult(SDKModel):
    uncached_input_tokens: int
    cache_creation: CacheCreation
    cache_read_input_tokens: int
    output_tokens: int
    server_tool_use: ServerToolUse
    api_key_id: Optional[str]
    workspace_id: Optional[str]
    model: Optional[str]
    service_tier: Optional[Literal["standard", "batch", "priority", "priority_on_demand", "flex", "flex_discount"]]
    context_window: Optional[Literal["0-200k", "200k-1M"]]


class UsageBucket(SDKModel):
    starting_at: dt.datetime
    ending_at: dt.datetime
    results: List[UsageResult]


class UsageReport(SDKModel):
    data: List[UsageBucket]
    has_more: bool
    next_page: Optional[str]


class CostResult(SDKModel):
    currency: Literal["USD"]
    amount: str
    workspace_id: Optional[str]
    description: Optional[str]
    cost_type: Optional[Literal["tokens", "web_search", "code_execution"]]
    model: Optional[str]
    service_tier: Optional[Literal["standard", "batch"]]
    context_window: Optional[Literal["0-200k", "200k-1M"]]
    token_type: Optional[Literal[
        "uncached_input_tokens", "output_tokens", "cache_read_input_tokens",
        "cache_creation.ephemeral_1h_input_tokens", "cache_creation.ephemeral_5m_input_tokens",
    ]]


class CostBucket(SDKModel):
    starting_at: dt.datetime
    ending_at: dt.datetime
    results: List[CostResult]


class CostReport(SDKModel):
    data: List[CostBucket]
    has_more: bool
    next_page: Optional[str]


class UserActor(SDKModel):
    type: Literal["user_actor"]
    email_address: str


class ApiActor(SDKModel):
    type: Literal["api_actor"]
    api_key_name: str


class LinesOfCode(SDKModel):
    added: int
    removed: int


class CoreMetrics(SDKModel):
    num_sessions: int
    lines_of_code: LinesOfCode
    commits_by_claude_code: int
    pull_requests_by_claude_code: int


class ToolAction(SDKModel):
    accepted: int
    rejected: int


class CCTokens(SDKModel):
    input: int
    output: int
    cache_read: int
    cache_creation: int


class EstimatedCost(SDKModel):
    currency: Literal["USD"]
    amount: Union[int, float]


class ModelBreakdown(SDKModel):
    model: str
    tokens: CCTokens
    estimated_cost: EstimatedCost


class ClaudeCodeRecord(SDKModel):
    date: Union[dt.datetime, dt.date]
    actor: Union[UserActor, ApiActor]
    organization_id: str
    customer_type: Literal["api", "subscription"]
    subscription_type: Optional[Literal["enterprise", "team"]] = None
    terminal_type: str
    core_metrics: CoreMetrics
    tool_actions: Dict[str, ToolAction]
    model_breakdown: List[ModelBreakdown]


class ClaudeCodeReport(SDKModel):
    data: List[ClaudeCodeRecord]
    has_more: bool
    next_page: Optional[str]


# ---------------------------------------------------------------------------------------------


def main() -> int:
    base_url = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ORGKEEPER_SIM_URL", "")).rstrip("/")
    if not base_url:
        print("usage: compat.py BASE_URL")
        return 2
    print(f"anthropic {anthropic.__version__} against {base_url} (run {RUN})")

    # The SDK exactly as a script would build it.
    sdk_default = anthropic.Anthropic(api_key=ADMIN_KEY, base_url=base_url, max_retries=0, timeout=20)
    client = sdk_default
    org = client.organization
    ctx: Dict[str, Any] = {}

    @check("sdk: anthropic version is 2.10.0")
    def _() -> str:
        ensure(anthropic.__version__ == SDK_VERSION, f"installed {anthropic.__version__}")
        return anthropic.__version__

    # ----------------------------------------------------------------- transport / auth
    @check("auth: SDK default credentials (Authorization: Bearer <admin key>) accepted")
    def _() -> str:
        raw = sdk_default.organization.with_raw_response.retrieve()
        sent = raw.http_request.headers
        ensure("x-api-key" not in sent, "SDK unexpectedly sent x-api-key")
        validate(OrganizationInfo, raw.json(), "GET /v1/organizations/me")
        return f"sent anthropic-version {sent.get('anthropic-version')}"

    @check("auth: non-admin key -> AuthenticationError (SDK default credentials)")
    def _() -> str:
        c = anthropic.Anthropic(api_key=NON_ADMIN_KEY, base_url=base_url, max_retries=0)
        e = expect_error(anthropic.AuthenticationError, c.organization.retrieve, "authentication_error", 401)
        return e.request_id

    @check("auth: non-admin key -> AuthenticationError (x-api-key)")
    def _() -> str:
        c = anthropic.Anthropic(api_key=NON_ADMIN_KEY, base_url=base_url, max_retries=0,
                                default_headers={"x-api-key": NON_ADMIN_KEY})
        e = expect_error(anthropic.AuthenticationError, lambda: c.organization.users.list(limit=1),
                         "authentication_error", 401)
        return e.request_id

    # ----------------------------------------------------------------- organization
    @check("organization.retrieve: GET /v1/organizations/me is an OrganizationInfo")
    def _() -> str:
        raw = org.with_raw_response.retrieve()
        request_id_ok(raw.request_id, "me")
        validate(OrganizationInfo, raw.json(), "me")
        info = raw.parse()
        ensure(isinstance(info, OrganizationInfo), f"parsed as {type(info)}")
        uuid.UUID(info.id)
        ensure(info.type == "organization" and info.name, f"{info}")
        ctx["org_id"] = info.id
        ensure(set(raw.json()) == {"id", "type", "name"}, f"/me has extra fields: {sorted(raw.json())}")
        return f"{info.name} {info.id}"

    @check("beta.organization.retrieve is a BetaOrganization")
    def _() -> None:
        raw = client.beta.organization.with_raw_response.retrieve()
        validate(BetaOrganization, raw.json(), "beta me")
        ensure(raw.parse().id == ctx.get("org_id"), "beta /me id differs")

    # ----------------------------------------------------------------- users
    @check("users.list: first page (limit=7) envelope and OrganizationUser items")
    def _() -> str:
        raw = org.users.with_raw_response.list(limit=7)
        request_id_ok(raw.request_id, "users.list")
        page = validate_page(raw, OrganizationUser, "GET /v1/organizations/users")
        ensure(len(page.data) == 7, f"{len(page.data)} items for limit=7")
        ensure(page.has_more is True, "has_more should be true on the first of several pages")
        for u in page.data:
            ensure(isinstance(u, OrganizationUser), f"item parsed as {type(u)}")
            ensure(u.id.startswith("user_") and "@" in u.email and u.name, f"odd user {u}")
            aware(u.added_at, "added_at")
        return f"first_id={page.first_id}"

    @check("users.list: SDK auto-pagination (limit=7) walks every page")
    def _() -> str:
        pager = org.users.list(limit=7)
        pages = list(pager.iter_pages())
        users = [u for p in pages for u in p.data]
        ids = [u.id for u in users]
        ensure(len(pages) >= 3, f"only {len(pages)} page(s)")
        ensure(len(ids) == len(set(ids)), "a user appears twice across pages")
        ensure(pages[-1].has_more is False, "last page has_more is not false")
        full = org.users.list(limit=1000)
        ensure([u.id for u in full.data] == ids, "auto-paginated order differs from one limit=1000 page")
        ensure(full.has_more is False, "limit=1000 page has_more")
        ctx["users"] = users
        return f"{len(ids)} users in {len(pages)} pages"

    users: List[OrganizationUser] = ctx.get("users") or list(org.users.list(limit=1000))

    @check("users.list: backwards auto-pagination with before_id")
    def _() -> str:
        last = users[-1].id
        back = [u.id for u in org.users.list(before_id=last, limit=6)]
        ensure(sorted(back) == sorted(u.id for u in users[:-1]),
               f"before_id walk gave {len(back)} users, expected {len(users) - 1}")
        return f"{len(back)} users"

    @check("users.list: email filter (case-insensitive exact match)")
    def _() -> str:
        target = users[len(users) // 2]
        page = org.users.list(email=target.email.upper())
        ensure([u.id for u in page.data] == [target.id], f"got {[u.email for u in page.data]}")
        none = org.users.list(email=f"nobody-{RUN}@example.com")
        ensure(none.data == [] and none.has_more is False, "unknown email should give an empty page")
        return target.email

    @check("users.list: roles[] filter (OR-ed)")
    def _() -> str:
        wanted = {"developer", "billing"}
        got = list(org.users.list(roles=sorted(wanted), limit=5))
        ensure(got, "no users with roles developer/billing")
        ensure(all(u.role in wanted for u in got), f"roles {set(u.role for u in got)}")
        expected = sum(1 for u in users if u.role in wanted)
        ensure(len(got) == expected, f"{len(got)} users, expected {expected}")
        return f"{len(got)} users"

    @check("beta.organization.users.list: BetaOrganizationUser page")
    def _() -> None:
        raw = client.beta.organization.users.with_raw_response.list(limit=3)
        page = validate_page(raw, BetaOrganizationUser, "beta users.list")
        ensure(len(page.data) == 3 and page.has_more, "beta page shape")

    plain = [u for u in users if u.role in ("developer", "user", "claude_code_user")]
    admins = [u for u in users if u.role == "admin"]

    @check("users.retrieve: GET /v1/organizations/users/{id}")
    def _() -> str:
        u = plain[0]
        raw = org.users.with_raw_response.retrieve(u.id)
        validate(OrganizationUser, raw.json(), "users.retrieve")
        got = raw.parse()
        ensure(got.model_dump() == u.model_dump(), f"retrieve {got} != list item {u}")
        return u.id

    @check("users.update: change role (developer <-> claude_code_user)")
    def _() -> str:
        u = plain[1]
        new_role = "claude_code_user" if u.role != "claude_code_user" else "developer"
        raw = org.users.with_raw_response.update(u.id, role=new_role)
        validate(OrganizationUser, raw.json(), "users.update")
        ensure(raw.parse().role == new_role, f"role {raw.parse().role}")
        ensure(org.users.retrieve(u.id).role == new_role, "role not persisted")
        org.users.update(u.id, role=u.role if u.role != "admin" else "user")  # type: ignore[arg-type]
        return f"{u.id} {u.role} -> {new_role} -> {u.role}"

    @check("users.update: assigning admin -> BadRequestError")
    def _() -> str:
        e = expect_error(anthropic.BadRequestError,
                         lambda: org.users.update(plain[2].id, role="admin"),  # type: ignore[arg-type]
                         "invalid_request_error", 400)
        ensure(org.users.retrieve(plain[2].id).role != "admin", "admin was assigned anyway")
        return e.request_id

    @check("users.remove: an org admin -> BadRequestError")
    def _() -> str:
        ensure(admins, "no admin in the seeded org")
        e = expect_error(anthropic.BadRequestError, lambda: org.users.remove(admins[-1].id),
                         "invalid_request_error", 400)
        return e.request_id

    @check("users.retrieve: unknown id -> NotFoundError")
    def _() -> str:
        e = expect_error(anthropic.NotFoundError,
                         lambda: org.users.retrieve("user_01" + "Z" * 22), "not_found_error", 404)
        return e.request_id

    @check("users.remove: DELETE returns UserRemoveResponse; user is gone")
    def _() -> str:
        victim = plain[-1]
        raw = org.users.with_raw_response.remove(victim.id)
        validate(UserRemoveResponse, raw.json(), "users.remove")
        r = raw.parse()
        ensure(r.id == victim.id and r.type == "user_deleted", f"{r}")
        expect_error(anthropic.NotFoundError, lambda: org.users.retrieve(victim.id), "not_found_error", 404)
        ensure(victim.id not in {u.id for u in org.users.list(limit=1000)}, "removed user still listed")
        ctx["removed_user"] = victim.id
        return victim.id

    # ----------------------------------------------------------------- invites
    @check("invites.list: OrganizationInvite pages, 21-day expiry, auto-pagination")
    def _() -> str:
        raw = org.invites.with_raw_response.list(limit=3)
        validate_page(raw, OrganizationInvite, "GET /v1/organizations/invites")
        invites = list(org.invites.list(limit=3))
        ensure(invites, "no invites seeded")
        for i in invites:
            ensure(i.expires_at is not None, f"{i.id} expires_at is None")
            ensure(aware(i.expires_at, "expires_at") - aware(i.invited_at, "invited_at") == dt.timedelta(days=21),
                   f"{i.id}: expires_at - invited_at = {i.expires_at - i.invited_at}")
            ensure(isinstance(i.rbac_group_ids, list), f"{i.id} rbac_group_ids {i.rbac_group_ids!r}")
            ensure(i.status != "deleted", f"{i.id}: deleted invite listed by default")
            if i.status == "accepted":
                ensure(i.accepted_at is not None, f"{i.id} accepted without accepted_at")
        ctx["invites"] = invites
        return f"{len(invites)} invites, statuses {sorted(set(i.status for i in invites))}"

    @check("invites.list: statuses[] filter")
    def _() -> str:
        invites = ctx["invites"]
        pending = list(org.invites.list(statuses=["pending"]))
        ensure(all(i.status == "pending" for i in pending), "non-pending invite under statuses[]=pending")
        ensure(len(pending) == sum(1 for i in invites if i.status == "pending"), "pending count differs")
        other = list(org.invites.list(statuses=["accepted", "expired"]))
        ensure(all(i.status in ("accepted", "expired") for i in other), "statuses[]=accepted,expired leak")
        ensure(len(other) + len(pending) == len(invites), "statuses partition does not cover the list")
        return f"{len(pending)} pending, {len(other)} accepted/expired"

    @check("invites.create: POST returns a pending OrganizationInvite")
    def _() -> str:
        email = f"sdk-compat-{RUN}@example.com"
        raw = org.invites.with_raw_response.create(email=email, role="developer")
        validate(OrganizationInvite, raw.json(), "invites.create")
        inv = raw.parse()
        ensure(inv.email == email and inv.role == "developer" and inv.status == "pending", f"{inv}")
        ensure(inv.id.startswith("invite_"), inv.id)
        ensure(inv.expires_at is not None and inv.expires_at - inv.invited_at == dt.timedelta(days=21),
               f"expires_at {inv.expires_at}")
        ensure(inv.accepted_at is None and inv.rbac_group_ids == [], f"{inv}")
        ctx["invite"] = inv
        return inv.id

    @check("invites.retrieve: GET returns the created invite")
    def _() -> None:
        inv = ctx["invite"]
        raw = org.invites.with_raw_response.retrieve(inv.id)
        validate(OrganizationInvite, raw.json(), "invites.retrieve")
        ensure(raw.parse().model_dump() == inv.model_dump(), "retrieve differs from create")

    @check("invites.create: duplicate pending invite -> BadRequestError invite_already_exists")
    def _() -> None:
        e = expect_error(anthropic.BadRequestError,
                         lambda: org.invites.create(email=ctx["invite"].email, role="user"),
                         "invalid_request_error", 400)
        ensure(e.error_code == "invite_already_exists", f"error_code {e.error_code!r}")

    @check("invites.create: existing member -> BadRequestError already_member")
    def _() -> None:
        e = expect_error(anthropic.BadRequestError,
                         lambda: org.invites.create(email=users[0].email, role="user"),
                         "invalid_request_error", 400)
        ensure(e.error_code == "already_member", f"error_code {e.error_code!r}")

    @check("invites.create: role admin -> BadRequestError")
    def _() -> str:
        e = expect_error(anthropic.BadRequestError,
                         lambda: org.invites.create(email=f"sdk-admin-{RUN}@example.com", role="admin"),  # type: ignore[arg-type]
                         "invalid_request_error", 400)
        return e.request_id

    @check("invites.delete: DELETE returns InviteDeleteResponse; invite leaves the default list")
    def _() -> str:
        inv = ctx["invite"]
        raw = org.invites.with_raw_response.delete(inv.id)
        validate(InviteDeleteResponse, raw.json(), "invites.delete")
        r = raw.parse()
        ensure(r.id == inv.id and r.type == "invite_deleted", f"{r}")
        ensure(inv.id not in {i.id for i in org.invites.list(limit=1000)}, "deleted invite still listed")
        try:
            after = org.invites.retrieve(inv.id)
            ensure(after.status == "deleted", f"status after delete: {after.status}")
            return "retrieve after delete: status deleted"
        except anthropic.NotFoundError:
            return "retrieve after delete: 404"

    @check("invites.retrieve: unknown id -> NotFoundError")
    def _() -> None:
        expect_error(anthropic.NotFoundError, lambda: org.invites.retrieve("invite_01" + "Z" * 22),
                     "not_found_error", 404)

    # ----------------------------------------------------------------- workspaces
    @check("workspaces.list: Workspace items; include_archived / include_default / ids")
    def _() -> str:
        raw = org.workspaces.with_raw_response.list(limit=2)
        validate_page(raw, Workspace, "GET /v1/organizations/workspaces")
        active = list(org.workspaces.list(limit=2))
        ensure(all(w.archived_at is None for w in active), "archived workspace listed by default")
        every = list(org.workspaces.list(include_archived=True, limit=2))
        ensure({w.id for w in active} <= {w.id for w in every}, "include_archived is not a superset")
        ensure(all(w.archived_at is None or aware(w.archived_at, "archived_at") for w in every), "")
        with_default = list(org.workspaces.list(include_default=True))
        extra = [w for w in with_default if w.id not in {a.id for a in active}]
        ensure(len(extra) == 1, f"include_default added {len(extra)} workspaces")
        ctx["default_ws"] = extra[0]
        for w in every:
            ensure(w.data_residency is not None and w.data_residency.workspace_geo == "us", f"{w.id} residency")
            ensure(isinstance(w.tags, dict) and isinstance(w.compartment_id, str), f"{w.id} tags/compartment")
            ensure(re.fullmatch(r"#[0-9A-Fa-f]{6}", w.display_color), f"{w.id} display_color {w.display_color}")
        ids = [active[0].id, active[-1].id]
        byid = org.workspaces.list(ids=ids)
        ensure(sorted(w.id for w in byid.data) == sorted(set(ids)), "ids[] filter")
        ctx["workspaces"] = active
        return f"{len(active)} active, {len(every)} with archived"

    @check("workspaces.create: POST returns a Workspace")
    def _() -> str:
        name = f"SDK compat {RUN}"
        raw = org.workspaces.with_raw_response.create(
            name=name, display_color="#12AB9F", tags={"team": "sdk-compat"},
            data_residency={"allowed_inference_geos": ["us"], "default_inference_geo": "us"},
        )
        validate(Workspace, raw.json(), "workspaces.create")
        w = raw.parse()
        ensure(w.name == name and w.display_color.upper() == "#12AB9F" and w.archived_at is None, f"{w}")
        ensure(w.tags == {"team": "sdk-compat"}, f"tags {w.tags}")
        ensure(w.data_residency.allowed_inference_geos == ["us"], f"{w.data_residency}")
        ensure(w.data_residency.default_inference_geo == "us", f"{w.data_residency}")
        aware(w.created_at, "created_at")
        ctx["ws"] = w
        return w.id

    @check("workspaces.retrieve / update (name, tags)")
    def _() -> None:
        w = ctx["ws"]
        raw = org.workspaces.with_raw_response.retrieve(w.id)
        validate(Workspace, raw.json(), "workspaces.retrieve")
        ensure(raw.parse().model_dump() == w.model_dump(), "retrieve differs from create")
        raw = org.workspaces.with_raw_response.update(w.id, name=w.name + " renamed", tags={"env": "ci"})
        validate(Workspace, raw.json(), "workspaces.update")
        u = raw.parse()
        ensure(u.name == w.name + " renamed", f"name {u.name}")
        ensure(u.tags.get("env") == "ci", f"tags {u.tags}")
        ensure(org.workspaces.retrieve(w.id).name == u.name, "rename not persisted")

    @check("beta.organization.workspaces.retrieve is a BetaWorkspace")
    def _() -> None:
        raw = client.beta.organization.workspaces.with_raw_response.retrieve(ctx["ws"].id)
        validate(BetaWorkspace, raw.json(), "beta workspaces.retrieve")

    @check("workspaces.retrieve: unknown id -> NotFoundError")
    def _() -> None:
        expect_error(anthropic.NotFoundError, lambda: org.workspaces.retrieve("wrkspc_01" + "Z" * 22),
                     "not_found_error", 404)

    # ----------------------------------------------------------------- workspace members
    member = next(u for u in plain if u.id != ctx.get("removed_user") and u.role in ("developer", "user"))

    @check("workspaces.members.add: POST returns a WorkspaceMember")
    def _() -> str:
        raw = org.workspaces.members.with_raw_response.add(
            ctx["ws"].id, user_id=member.id, workspace_role="workspace_developer")
        validate(WorkspaceMember, raw.json(), "members.add")
        m = raw.parse()
        ensure(m.user_id == member.id and m.workspace_id == ctx["ws"].id, f"{m}")
        ensure(m.workspace_role == "workspace_developer", m.workspace_role)
        return member.id

    @check("workspaces.members.list: auto-pagination (limit=2), admins are workspace_admin")
    def _() -> str:
        ws = ctx["ws"].id
        raw = org.workspaces.members.with_raw_response.list(ws, limit=2)
        body = raw.json()
        for item in body["data"]:
            validate(WorkspaceMember, item, "members.list")
        ensure(isinstance(body["has_more"], bool), "has_more")
        if body["data"]:
            ensure(body["first_id"] == body["data"][0]["user_id"], f"first_id {body['first_id']}")
            ensure(body["last_id"] == body["data"][-1]["user_id"], f"last_id {body['last_id']}")
        members = list(org.workspaces.members.list(ws, limit=2))
        ids = [m.user_id for m in members]
        ensure(len(ids) == len(set(ids)), "member listed twice")
        ensure(member.id in ids, "added member not listed")
        roles = {m.user_id: m.workspace_role for m in members}
        for a in admins:
            ensure(roles.get(a.id) == "workspace_admin", f"admin {a.id} is {roles.get(a.id)}")
        ensure(all(m.workspace_id == ws for m in members), "workspace_id")
        return f"{len(members)} members"

    @check("workspaces.members.retrieve / update")
    def _() -> None:
        ws = ctx["ws"].id
        raw = org.workspaces.members.with_raw_response.retrieve(member.id, workspace_id=ws)
        validate(WorkspaceMember, raw.json(), "members.retrieve")
        ensure(raw.parse().workspace_role == "workspace_developer", "role after add")
        raw = org.workspaces.members.with_raw_response.update(
            member.id, workspace_id=ws, workspace_role="workspace_user")
        validate(WorkspaceMember, raw.json(), "members.update")
        ensure(raw.parse().workspace_role == "workspace_user", "role after update")
        ensure(org.workspaces.members.retrieve(member.id, workspace_id=ws).workspace_role == "workspace_user",
               "update not persisted")

    @check("workspaces.members.update: workspace_billing -> BadRequestError")
    def _() -> None:
        expect_error(anthropic.BadRequestError,
                     lambda: org.workspaces.members.update(member.id, workspace_id=ctx["ws"].id,
                                                           workspace_role="workspace_billing"),
                     "invalid_request_error", 400)

    @check("workspaces.members.remove: DELETE returns MemberRemoveResponse")
    def _() -> None:
        ws = ctx["ws"].id
        raw = org.workspaces.members.with_raw_response.remove(member.id, workspace_id=ws)
        validate(MemberRemoveResponse, raw.json(), "members.remove")
        r = raw.parse()
        ensure(r.type == "workspace_member_deleted" and r.user_id == member.id and r.workspace_id == ws, f"{r}")
        expect_error(anthropic.NotFoundError,
                     lambda: org.workspaces.members.retrieve(member.id, workspace_id=ws), "not_found_error", 404)

    # ----------------------------------------------------------------- rate limits
    @check("rate_limits.list: OrganizationRateLimit entries, page-cursor auto-pagination")
    def _() -> str:
        raw = org.rate_limits.with_raw_response.list()
        page = validate_cursor_page(raw, OrganizationRateLimit, "GET /v1/organizations/rate_limits")
        ensure(page.next_page is None, "everything in one page when limit is omitted")
        entries = page.data
        ensure(entries, "no rate limits")
        for r in entries:
            ensure(r.type == "rate_limit" and r.id and r.group.id.startswith("rlg_"), f"{r.id}")
            ensure(r.limits and all(isinstance(v.value, int) and v.type for v in r.limits), f"{r.id} limits")
            if r.group.type == "model_group":
                ensure(r.models, f"{r.id}: model_group without models")
                ensure(getattr(r.group, "display_name", None), f"{r.id}: model_group without display_name")
            else:
                ensure(r.models is None, f"{r.id}: models should be null for {r.group.type}")
        paged = list(org.rate_limits.list(limit=3))
        ensure([r.id for r in paged] == [r.id for r in entries], "limit=3 auto-pagination differs")
        ctx["rate_limits"] = entries
        return f"{len(entries)} entries"

    @check("rate_limits.list: group_type and model filters; unknown model -> NotFoundError")
    def _() -> None:
        batch = org.rate_limits.list(group_type="batch").data
        ensure(batch and all(r.group.type == "batch" for r in batch), "group_type=batch")
        model = next(r.models[0] for r in ctx["rate_limits"] if r.models)
        by_model = org.rate_limits.list(model=model).data
        ensure(by_model and all(model in (r.models or []) for r in by_model), "model filter")
        expect_error(anthropic.NotFoundError, lambda: org.rate_limits.list(model="claude-nonexistent-9"),
                     "not_found_error", 404)

    @check("beta.organization.rate_limits.list is BetaOrganizationRateLimit")
    def _() -> None:
        raw = client.beta.organization.rate_limits.with_raw_response.list(limit=2)
        validate_cursor_page(raw, BetaOrganizationRateLimit, "beta rate_limits")

    @check("workspaces.rate_limits.list: WorkspaceRateLimit entries (include_inherited)")
    def _() -> str:
        ws_list = ctx.get("workspaces") or list(org.workspaces.list())
        total = 0
        overrides = 0
        for w in ws_list:
            raw = org.workspaces.rate_limits.with_raw_response.list(w.id, include_inherited=True)
            page = validate_cursor_page(raw, WorkspaceRateLimit, "workspace rate_limits")
            for r in page.data:
                ensure(r.type == "workspace_rate_limit" and r.workspace_id == w.id, f"{r}")
                ensure(r.rate_limit_id in {x.id for x in ctx["rate_limits"]}, f"rate_limit_id {r.rate_limit_id}")
                for v in r.limits:
                    ensure(v.source.type in ("workspace", "organization"), f"source {v.source}")
                    if v.source.type == "organization":
                        ensure(v.value == v.org_limit, f"inherited value {v.value} != org_limit {v.org_limit}")
                    else:
                        overrides += 1
                total += 1
            only = org.workspaces.rate_limits.list(w.id).data
            ensure(all(v.source.type == "workspace" for r in only for v in r.limits),
                   "inherited limits listed without include_inherited")
        ensure(total > 0, "no workspace rate limits at all")
        return f"{total} entries, {overrides} overrides"

    @check("workspaces.rate_limits.list: unknown workspace -> NotFoundError")
    def _() -> None:
        expect_error(anthropic.NotFoundError,
                     lambda: org.workspaces.rate_limits.list("wrkspc_01" + "Z" * 22), "not_found_error", 404)

    @check("workspaces.rate_limits.update: set an override (above the org value too), clear it with null")
    def _() -> str:
        w = next(w for w in ctx.get("workspaces") or org.workspaces.list() if w.name != "Default Workspace")
        entry = next(r for r in ctx["rate_limits"] if r.group.type == "model_group")
        kind = entry.limits[0].type
        org_value = entry.limits[0].value
        raw = org.workspaces.rate_limits.with_raw_response.update(
            entry.id, workspace_id=w.id, limits=[{"type": kind, "value": 123}])
        updated = validate(WorkspaceRateLimit, raw.json(), "workspaces.rate_limits.update")
        ensure(updated.rate_limit_id == entry.id and updated.workspace_id == w.id, f"{updated}")
        mine = next(v for v in updated.limits if v.type == kind)
        ensure(mine.value == 123 and mine.source.type == "workspace" and mine.org_limit == org_value, f"{mine}")
        listed = org.workspaces.rate_limits.list(w.id).data
        ensure(any(v.type == kind and v.value == 123 for r in listed if r.rate_limit_id == entry.id for v in r.limits),
               "override not listed")
        above = org.workspaces.rate_limits.update(entry.id, workspace_id=w.id,
                                                  limits=[{"type": kind, "value": org_value * 10}])
        ensure(next(v for v in above.limits if v.type == kind).value == org_value * 10, "value above org limit refused")
        cleared = org.workspaces.rate_limits.update(entry.id, workspace_id=w.id, limits=[{"type": kind, "value": None}])
        back = next(v for v in cleared.limits if v.type == kind)
        ensure(back.source.type == "organization" and back.value == org_value, f"not cleared: {back}")
        expect_error(anthropic.BadRequestError,
                     lambda: org.workspaces.rate_limits.update(entry.id, workspace_id=w.id,
                                                               limits=[{"type": "requests_per_hour", "value": 1}]),  # type: ignore[typeddict-item]
                     "invalid_request_error", 400)
        expect_error(anthropic.NotFoundError,
                     lambda: org.workspaces.rate_limits.update("ratelimit_01" + "Z" * 22, workspace_id=w.id,
                                                               limits=[{"type": kind, "value": 1}]),
                     "not_found_error", 404)
        return f"{w.id} {kind}"

    # ----------------------------------------------------------------- spend limits
    spend = client.beta.organization.spend_limits

    @check("beta spend_limits.list: SpendLimit / BetaSpendLimit rows incl. read-only usage_tier")
    def _() -> str:
        raw = spend.with_raw_response.list()
        page = validate_cursor_page(raw, BetaSpendLimit, "GET /v1/organizations/spend_limits")
        for item in raw.json()["data"]:
            validate(SpendLimit, item, "spend_limits.list (GA SpendLimit)")
        rows = page.data
        tier = [r for r in rows if r.scope.type == "usage_tier"]
        ensure(len(tier) == 1 and tier[0].amount and tier[0].amount.isdigit(), f"usage_tier row {tier}")
        for r in rows:
            ensure(r.id.startswith("spl_") and r.type == "spend_limit" and r.currency == "USD", f"{r}")
            ensure(r.period == "monthly" and r.is_enabled is True, f"{r}")
            aware(r.created_at, "created_at")
        ensure([r.created_at for r in rows] == sorted((r.created_at for r in rows), reverse=True), "not newest first")
        paged = list(spend.list(limit=1))
        ensure([r.id for r in paged] == [r.id for r in rows], "limit=1 auto-pagination differs")
        only_ws = spend.list(scope_type=["workspace"]).data
        ensure(all(r.scope.type == "workspace" for r in only_ws), "scope_type filter")
        expect_error(anthropic.BadRequestError, lambda: spend.list(scope_type=["seat_tier"]), "invalid_request_error", 400)
        ctx["usage_tier"] = tier[0]
        return f"{len(rows)} rows"

    @check("beta spend_limits.set: upsert on (scope, period); retrieve; delete -> spend_limit_deleted")
    def _() -> str:
        raw = spend.with_raw_response.set(amount="250000", scope={"type": "organization"}, period="monthly")
        first = validate(SpendLimit, raw.json(), "spend_limits.set")
        ensure(first.scope.type == "organization" and first.amount == "250000", f"{first}")
        again = spend.set(amount="300000", scope={"type": "organization"})
        ensure(again.id == first.id and again.amount == "300000", "set is not an upsert on scope")
        w = next(w for w in ctx.get("workspaces") or org.workspaces.list() if w.name != "Default Workspace")
        ws_limit = spend.set(amount="1000", scope={"type": "workspace", "workspace_id": w.id}, period="monthly")
        ensure(ws_limit.scope.type == "workspace" and ws_limit.scope.workspace_id == w.id, f"{ws_limit}")
        ensure(w.id in {r.scope.workspace_id for r in spend.list(workspace_id=w.id).data}, "workspace_id filter")
        got = validate(BetaSpendLimit, spend.with_raw_response.retrieve(first.id).json(), "spend_limits.retrieve")
        ensure(got.amount == "300000", "retrieve")
        gone = validate(SpendLimitDeleteResponse, spend.with_raw_response.delete(first.id).json(), "spend_limits.delete")
        ensure(gone.id == first.id and gone.type == "spend_limit_deleted", f"{gone}")
        spend.delete(ws_limit.id)
        expect_error(anthropic.NotFoundError, lambda: spend.retrieve(first.id), "not_found_error", 404)
        expect_error(anthropic.BadRequestError, lambda: spend.delete(ctx["usage_tier"].id), "invalid_request_error", 400)
        expect_error(anthropic.BadRequestError,
                     lambda: spend.set(amount="12.50", scope={"type": "organization"}), "invalid_request_error", 400)
        expect_error(anthropic.BadRequestError,
                     lambda: spend.set(amount="100", scope={"type": "organization"}, period="daily"),
                     "invalid_request_error", 400)
        expect_error(anthropic.BadRequestError,
                     lambda: spend.set(amount="100", scope={"type": "user", "user_id": "user_01" + "Z" * 22}),
                     "invalid_request_error", 400)
        return first.id

    @check("spend_limits.effective (GA) on a Console org -> OrganizationTypeNotSupportedError")
    def _() -> None:
        e = expect_error(OrganizationTypeNotSupportedError, lambda: org.spend_limits.effective.list(),
                         "invalid_request_error", 400)
        ensure(e.error_code == "organization_type_not_supported", f"error_code {e.error_code!r}")

    for env, title in (("ORGKEEPER_SIM_NOT_ENABLED_URL", "not in the preview"),
                       ("ORGKEEPER_SIM_UNSUPPORTED_URL", "unsupported org type")):
        other_url = os.environ.get(env, "")
        if not other_url:
            continue
        other = anthropic.Anthropic(api_key=ADMIN_KEY, base_url=other_url, max_retries=0, timeout=20)
        other_spend = other.beta.organization.spend_limits

        @check(f"spend limits refused ({title}): the SDK's typed error with error_code")
        def _() -> None:
            if env == "ORGKEEPER_SIM_NOT_ENABLED_URL":
                for call in (lambda: other_spend.set(amount="100", scope={"type": "organization"}),
                             lambda: other_spend.retrieve("spl_01" + "Z" * 22),
                             lambda: other_spend.delete("spl_01" + "Z" * 22),
                             lambda: other_spend.list()):
                    e = expect_error(BetaSpendLimitsAdminAPIWritesNotEnabledError, call, "permission_error", 403)
                    ensure(e.error_code == "spend_limits_admin_api_writes_not_enabled", f"{e.error_code!r}")
            else:
                e = expect_error(OrganizationTypeNotSupportedError, lambda: other_spend.list(),
                                 "invalid_request_error", 400)
                ensure(e.error_code == "organization_type_not_supported", f"{e.error_code!r}")

    # ----------------------------------------------------------------- api keys
    @check("api_keys.list: APIKey items with scope, auto-pagination (limit=10)")
    def _() -> str:
        raw = org.api_keys.with_raw_response.list(limit=10)
        validate_page(raw, APIKey, "GET /v1/organizations/api_keys")
        keys = list(org.api_keys.list(limit=10))
        ensure(len(keys) > 10, f"only {len(keys)} keys")
        ensure(len({k.id for k in keys}) == len(keys), "key listed twice")
        for k in keys:
            ensure(k.id.startswith("apikey_") and k.type == "api_key", k.id)
            ensure(k.scope is not None, f"{k.id}: scope is None")
            ensure(k.scope.type in ("workspace", "organization"), f"{k.id}: scope {k.scope}")
            if k.scope.type == "workspace":
                ensure(getattr(k.scope, "workspace_id", None), f"{k.id}: workspace scope without workspace_id")
            else:
                ensure(k.principal is not None, f"{k.id}: organization-scoped key without principal")
            if k.created_by is not None:
                ensure(k.created_by.type in ("user", "service_account") and k.created_by.id, f"{k.id} created_by")
            if k.principal is not None:
                ensure(k.principal.type in ("user_actor", "service_account_actor"), f"{k.id} principal")
            aware(k.created_at, "created_at")
            if k.expires_at is not None:
                aware(k.expires_at, "expires_at")
        ctx["keys"] = keys
        statuses = sorted({k.status for k in keys})
        return f"{len(keys)} keys, statuses {statuses}"

    @check("api_keys.list: status / workspace_id / created_by_user_id filters")
    def _() -> str:
        keys = ctx["keys"]
        active = list(org.api_keys.list(status="active", limit=50))
        ensure(active and all(k.status == "active" for k in active), "status=active")
        ensure(len(active) == sum(1 for k in keys if k.status == "active"), "active count")
        ws = next(k.scope.workspace_id for k in keys if k.scope.type == "workspace")
        in_ws = list(org.api_keys.list(workspace_id=ws, limit=50))
        ensure(in_ws and all(k.scope.type == "workspace" and k.scope.workspace_id == ws for k in in_ws),
               "workspace_id filter")
        creator = next(k.created_by.id for k in keys if k.created_by is not None and k.created_by.type == "user")
        by = list(org.api_keys.list(created_by_user_id=creator, limit=50))
        ensure(by and all(k.created_by is not None and k.created_by.id == creator for k in by), "creator filter")
        ensure(len(by) == sum(1 for k in keys if k.created_by is not None and k.created_by.id == creator),
               "creator count")
        return f"{len(active)} active, {len(in_ws)} in {ws}, {len(by)} by {creator}"

    @check("api_keys.retrieve / update (name, status)")
    def _() -> str:
        k = next(k for k in ctx["keys"] if k.status == "active")
        raw = org.api_keys.with_raw_response.retrieve(k.id)
        validate(APIKey, raw.json(), "api_keys.retrieve")
        ensure(raw.parse().id == k.id and raw.parse().scope is not None, "retrieve")
        new_name = f"sdk-compat {RUN}"
        raw = org.api_keys.with_raw_response.update(k.id, name=new_name)
        validate(APIKey, raw.json(), "api_keys.update")
        ensure(raw.parse().name == new_name, "name not updated")
        ensure(org.api_keys.update(k.id, status="inactive").status == "inactive", "status inactive")
        ensure(org.api_keys.retrieve(k.id).status == "inactive", "status not persisted")
        back = org.api_keys.update(k.id, status="active", name=k.name)
        ensure(back.status == "active" and back.name == k.name, "restore")
        return k.id

    @check("api_keys.update: status expired -> BadRequestError; unknown id -> NotFoundError")
    def _() -> None:
        k = ctx["keys"][0]
        expect_error(anthropic.BadRequestError,
                     lambda: org.api_keys.update(k.id, status="expired"),  # type: ignore[arg-type]
                     "invalid_request_error", 400)
        expect_error(anthropic.NotFoundError, lambda: org.api_keys.retrieve("apikey_01" + "Z" * 22),
                     "not_found_error", 404)

    @check("api_keys: every key type (personal, service account, legacy workspace, organization-scoped, expired)")
    def _() -> str:
        keys = ctx["keys"]
        personal_ws = [k for k in keys if k.principal is not None and k.principal.type == "user_actor"
                       and k.scope.type == "workspace"]
        service = [k for k in keys if k.principal is not None and k.principal.type == "service_account_actor"]
        legacy = [k for k in keys if k.principal is None]
        org_scoped = [k for k in keys if k.scope.type == "organization"]
        expired = [k for k in keys if k.status == "expired"]
        ensure(personal_ws and service and legacy and org_scoped and expired,
               f"personal {len(personal_ws)}, service {len(service)}, legacy {len(legacy)}, "
               f"org {len(org_scoped)}, expired {len(expired)}")
        ensure(all(k.scope.type == "workspace" for k in legacy), "a legacy key without a workspace")
        ensure(all(k.principal.service_account_id.startswith("svac_") for k in service), "service account id")
        return f"{len(personal_ws)} personal, {len(service)} service, {len(legacy)} legacy, {len(org_scoped)} org"

    @check("beta.organization.api_keys.list is BetaAPIKey")
    def _() -> None:
        raw = client.beta.organization.api_keys.with_raw_response.list(limit=5)
        page = validate_page(raw, BetaAPIKey, "beta api_keys.list")
        ensure(all(k.scope is not None for k in page.data), "beta key without scope")

    # ----------------------------------------------------------------- archive (after members)
    @check("workspaces.archive: POST .../archive sets archived_at; list filters it")
    def _() -> None:
        w = ctx["ws"]
        raw = org.workspaces.with_raw_response.archive(w.id)
        validate(Workspace, raw.json(), "workspaces.archive")
        a = raw.parse()
        ensure(a.id == w.id and a.archived_at is not None, f"archived_at {a.archived_at}")
        aware(a.archived_at, "archived_at")
        ensure(w.id not in {x.id for x in org.workspaces.list(limit=100)}, "archived listed by default")
        ensure(w.id in {x.id for x in org.workspaces.list(include_archived=True, limit=100)},
               "archived not listed with include_archived")

    @check("workspaces.archive: the default workspace -> BadRequestError")
    def _() -> None:
        expect_error(anthropic.BadRequestError, lambda: org.workspaces.archive(ctx["default_ws"].id),
                     "invalid_request_error", 400)

    # ----------------------------------------------------------------- reports (no SDK method)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

    def report(path: str, params: Dict[str, Any]) -> Any:
        return client.get(path, cast_to=object, options={"params": params})

    @check("usage_report/messages (client.get; not in SDK 2.10.0): group_by, next_page paging")
    def _() -> str:
        params: Dict[str, Any] = {
            "starting_at": (today - dt.timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ending_at": today.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "bucket_width": "1d", "limit": 2, "group_by": ["model", "workspace_id"],
        }
        buckets: List[UsageBucket] = []
        pages = 0
        while True:
            rep = validate(UsageReport, report("/v1/organizations/usage_report/messages", params), "usage_report")
            pages += 1
            buckets += rep.data
            ensure(rep.has_more == (rep.next_page is not None), "has_more/next_page disagree")
            if not rep.has_more:
                break
            ensure(pages < 20, "usage report does not end")
            params["page"] = rep.next_page
        ensure(len(buckets) == 6, f"{len(buckets)} daily buckets for 6 days")
        results = [r for b in buckets for r in b.results]
        ensure(results, "no usage")
        for b in buckets:
            ensure(b.ending_at - b.starting_at == dt.timedelta(days=1), "bucket width")
        ensure(all(r.model for r in results), "model null although grouped by model")
        ensure(all(r.api_key_id is None and r.service_tier is None for r in results), "ungrouped not null")
        return f"{pages} pages, {len(results)} results"

    @check("cost_report (client.get; not in SDK 2.10.0): amount is a decimal string of cents")
    def _() -> str:
        params = {
            "starting_at": (today - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ending_at": today.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "group_by": ["workspace_id", "description"],
        }
        rep = validate(CostReport, report("/v1/organizations/cost_report", params), "cost_report")
        ensure(len(rep.data) == 3 and rep.has_more is False and rep.next_page is None, "3 buckets, one page")
        results = [r for b in rep.data for r in b.results]
        ensure(results, "no cost")
        total = Decimal(0)
        for r in results:
            ensure(isinstance(r.amount, str), f"amount {r.amount!r} is not a string")
            try:
                total += Decimal(r.amount)
            except InvalidOperation:
                raise AssertionError(f"amount {r.amount!r} is not a decimal") from None
            ensure(r.currency == "USD", r.currency)
            ensure(r.description and r.cost_type, "description/cost_type null although grouped by description")
        return f"{len(results)} results, {total} cents"

    @check("usage_report/claude_code (client.get; not in SDK 2.10.0): records, paging")
    def _() -> str:
        day = (today - dt.timedelta(days=2)).strftime("%Y-%m-%d")
        params: Dict[str, Any] = {"starting_at": day, "limit": 3}
        records: List[ClaudeCodeRecord] = []
        pages = 0
        while True:
            rep = validate(ClaudeCodeReport, report("/v1/organizations/usage_report/claude_code", params),
                           "claude_code report")
            pages += 1
            records += rep.data
            if not rep.has_more:
                break
            ensure(rep.next_page, "has_more without next_page")
            ensure(pages < 50, "claude code report does not end")
            params["page"] = rep.next_page
        ensure(records, f"no Claude Code records for {day}")
        for r in records:
            ensure(r.organization_id == ctx.get("org_id", r.organization_id), "organization_id")
            for mb in r.model_breakdown:
                ensure(isinstance(mb.estimated_cost.amount, (int, float)) and not isinstance(mb.estimated_cost.amount, bool),
                       "estimated_cost.amount is not a number")
        return f"{len(records)} records in {pages} pages"

    @check("usage_report/messages: missing starting_at -> BadRequestError")
    def _() -> None:
        expect_error(anthropic.BadRequestError, lambda: report("/v1/organizations/usage_report/messages", {}),
                     "invalid_request_error", 400)

    # ----------------------------------------------------------------- usage and cost analytics
    analytics = client.beta.organization.analytics
    # Last month, whole: within the API's bounds (2026-01-01 on, 31 days at most).
    this_month = today.replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)

    def analytics_pages(method: Any, item_model: Any, **params: Any) -> List[Any]:
        """Every page through the SDK's raw response, each body validated strictly."""
        rows: List[Any] = []
        page: Optional[str] = None
        for _ in range(200):
            raw = method.with_raw_response.list(**params, **({"page": page} if page else {}))
            ensure(raw.http_request.headers.get("anthropic-beta") == "analytics-usage-cost-2026-08-24",
                   f"beta header sent: {raw.http_request.headers.get('anthropic-beta')!r}")
            body = raw.json()
            ensure(isinstance(body.get("data"), list), "data is not a list")
            ensure(isinstance(body.get("has_more"), bool), f"has_more {body.get('has_more')!r}")
            ensure(body["next_page"] is None or isinstance(body["next_page"], str), "next_page")
            aware(dt.datetime.fromisoformat(body["data_refreshed_at"].replace("Z", "+00:00")), "data_refreshed_at")
            for item in body["data"]:
                rows.append(validate(item_model, item, f"analytics {item_model.__name__}"))
            parsed = raw.parse()
            ensure(len(parsed.data) == len(body["data"]), "the SDK page dropped rows")
            if not parsed.has_next_page():
                ensure(body["has_more"] is False, "the SDK stops while has_more is true")
                return rows
            page = body["next_page"]
        raise AssertionError("analytics pages never ended")

    @check("beta analytics.usage.list: rows parse as BetaAnalyticsUsageItem across pages; SDK auto-pagination agrees")
    def _() -> str:
        params: Dict[str, Any] = dict(
            starting_at=last_month, ending_at=this_month, time_bucket_width="1d",
            group_by=["actor", "workspace_id", "api_key_id"], limit=250,
        )
        rows = analytics_pages(analytics.usage, BetaAnalyticsUsageItem, **params)
        ensure(len(rows) > 250, f"{len(rows)} rows: expected several pages")
        auto = list(analytics.usage.list(**params))
        ensure(len(auto) == len(rows), f"auto-pagination saw {len(auto)} rows, pages {len(rows)}")
        kinds = set()
        for r in rows:
            aware(r.starting_at, "starting_at")
            ensure(r.ending_at - r.starting_at == dt.timedelta(days=1), "1d bucket")
            ensure(r.group.actor is not None and r.group.workspace_id, "grouped fields are set")
            ensure(r.group.model is None and r.group.product is None, "ungrouped fields are null")
            u = r.usage
            ensure(u.total_tokens == u.uncached_input_tokens + u.cache_read_input_tokens + u.output_tokens
                   + u.cache_creation.ephemeral_1h_input_tokens + u.cache_creation.ephemeral_5m_input_tokens,
                   "total_tokens")
            kinds.add(r.group.actor.type)
        ensure(kinds == {"user_actor", "service_account_actor", "api_actor"}, f"actor types {kinds}")
        return f"{len(rows)} rows, actors {sorted(kinds)}"

    @check("beta analytics.cost.list: decimal-string amounts per actor add up to the cost report")
    def _() -> str:
        rows = analytics_pages(analytics.cost, BetaAnalyticsCostItem, starting_at=last_month,
                               ending_at=this_month, group_by=["actor"], limit=1000)
        total = Decimal(0)
        for r in rows:
            ensure(r.cost.currency == "USD", r.cost.currency)
            ensure(isinstance(r.cost.requests, int), "requests")
            total += Decimal(r.cost.amount)
            Decimal(r.cost.list_amount)
        rep = validate(CostReport, report("/v1/organizations/cost_report", {
            "starting_at": last_month.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ending_at": this_month.strftime("%Y-%m-%dT%H:%M:%SZ"), "limit": 31,
        }), "cost_report")
        expected = sum((Decimal(x.amount) for b in rep.data for x in b.results), Decimal(0))
        ensure(total == expected, f"analytics {total} != cost report {expected}")
        return f"{len(rows)} actors, {total} cents"

    @check("beta analytics.cost.list: cost_type and token_type fan-out rows parse, requests null")
    def _() -> str:
        rows = analytics_pages(analytics.cost, BetaAnalyticsCostItem, starting_at=last_month,
                               ending_at=this_month, group_by=["actor_type", "cost_type", "token_type"], limit=2)
        ensure(rows, "no rows")
        for r in rows:
            ensure(r.cost.requests is None, "requests must be null when grouped by cost_type")
            ensure(r.group.cost_type in ("tokens", "web_search"), f"cost_type {r.group.cost_type}")
            ensure((r.group.token_type is None) == (r.group.cost_type != "tokens"), "token_type")
        return f"{len(rows)} rows"

    @check("beta analytics: bounds -> BadRequestError (2026-01-01, 31 days, 1m 24 h, ending_at, 5 groups, limit)")
    def _() -> str:
        start = last_month
        cases = [
            dict(starting_at=dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc)),
            dict(starting_at=today - dt.timedelta(days=40), ending_at=today),
            dict(starting_at=today - dt.timedelta(days=3), ending_at=today, time_bucket_width="1m"),
            dict(starting_at=start, time_bucket_width="1d"),
            dict(starting_at=start, group_by=["actor", "model", "product", "workspace_id", "api_key_id", "speed"]),
            dict(starting_at=start, limit=0),
        ]
        for params in cases:
            expect_error(anthropic.BadRequestError, lambda: analytics.usage.list(**params),
                         "invalid_request_error", 400)
        return f"{len(cases)} refusals"

    @check("analytics without the beta header -> BadRequestError naming it")
    def _() -> None:
        e = expect_error(anthropic.BadRequestError, lambda: report("/v1/organizations/analytics/cost", {
            "starting_at": last_month.strftime("%Y-%m-%dT%H:%M:%SZ")}), "invalid_request_error", 400)
        ensure("analytics-usage-cost-2026-08-24" in e.api_message, e.api_message)

    no_analytics = os.environ.get("ORGKEEPER_SIM_NO_ANALYTICS_URL")
    if no_analytics:
        @check("beta analytics where the organization may not read them -> PermissionDeniedError")
        def _() -> None:
            c = anthropic.Anthropic(api_key=ADMIN_KEY, base_url=no_analytics, max_retries=0, timeout=20)
            expect_error(anthropic.PermissionDeniedError,
                         lambda: c.beta.organization.analytics.cost.list(starting_at=last_month),
                         "permission_error", 403)

    # ----------------------------------------------------------------- summary
    for n in notes:
        print(f"note: {n}")
    if known:
        print(f"{known} known mismatch(es) not counted (ORGKEEPER_SDK_STRICT=1 counts them)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
