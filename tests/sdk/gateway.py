#!/usr/bin/env python3
"""A script as automation would write it: the official `anthropic` SDK pointed at Orgkeeper
with an Orgkeeper token instead of the admin key.

Usage: gateway.py            (settings in the environment, see below)

  ORGKEEPER_URL           the server's address
  TOKEN_ADMIN             an admin's read-write token
  TOKEN_READ_ONLY         a read-only token
  TOKEN_TEAM_LEAD         a team lead's token (one workspace)
  TOKEN_REVOKED           a revoked token
  TOKEN_EXPIRED           an expired token
  RENAME_KEY, NEW_NAME    a key to rename through TOKEN_ADMIN, and its new name
  OTHER_WORKSPACE         a workspace outside the team lead's

Prints one JSON object on its last line with what it saw; the Rust test compares it with the
model and the audit log (the assertions live there, next to what they compare against).
"""

import json
import os

import anthropic

url = os.environ["ORGKEEPER_URL"]


def client(token):
    # max_retries=0: a refusal is an answer to report, not something to retry.
    return anthropic.Anthropic(api_key=token, base_url=url, max_retries=0)


def refusal(call):
    """The SDK exception class a call raises, and its request id."""
    try:
        call()
    except anthropic.APIStatusError as e:
        return {"class": type(e).__name__, "status": e.status_code, "request_id": e.request_id}
    return {"class": None}


admin = client(os.environ["TOKEN_ADMIN"])
seen = {
    # Auto-pagination, as a script does it: small pages, every one followed.
    "users": [u.id for u in admin.organization.users.list(limit=7)],
    "keys": [k.id for k in admin.organization.api_keys.list(limit=50)],
    "workspaces": [w.id for w in admin.organization.workspaces.list(limit=3)],
}
renamed = admin.organization.api_keys.update(os.environ["RENAME_KEY"], name=os.environ["NEW_NAME"])
seen["renamed"] = {"id": renamed.id, "name": renamed.name}

read_only = client(os.environ["TOKEN_READ_ONLY"])
seen["read_only_lists"] = len(list(read_only.organization.users.list(limit=100)))
seen["read_only_write"] = refusal(
    lambda: read_only.organization.api_keys.update(os.environ["RENAME_KEY"], name="not allowed")
)

lead = client(os.environ["TOKEN_TEAM_LEAD"])
seen["lead_workspaces"] = [w.id for w in lead.organization.workspaces.list()]
seen["lead_other_workspace"] = refusal(
    lambda: lead.organization.workspaces.retrieve(os.environ["OTHER_WORKSPACE"])
)
seen["revoked"] = refusal(lambda: client(os.environ["TOKEN_REVOKED"]).organization.users.list())
seen["expired"] = refusal(lambda: client(os.environ["TOKEN_EXPIRED"]).organization.users.list())
print(json.dumps(seen))
