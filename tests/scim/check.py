"""An independent SCIM 2.0 compliance check of Orgkeeper's /scim/v2 (issue 23).

Runs scim2-tester 0.5.2 (python-scim, https://github.com/python-scim/scim2-tester) with the
httpx2 engine of scim2-client 0.13.2 on discovery and User create/read/replace/delete.

    python check.py http://127.0.0.1:PORT/scim/v2 orgk_scim_...

Prints one line per check and, last, "N passed, M failed, K skipped"; exits 1 on any failure
(SKIPPED is not one: scim2-tester skips what the server honestly does not announce).
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

TAGS = {"discovery", "misc", "crud:create", "crud:read", "crud:update", "crud:delete"}


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: check.py BASE_URL TOKEN", file=sys.stderr)
        return 2
    url, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    results = check_server(client, include_tags=TAGS, resource_types=["User"])
    bad = [r for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    for r in results:
        reason = (r.reason or "").replace("\n", " ")
        print(f"{r.status.name:9} {r.resource_type or '-':6} {r.title}: {reason}")
    passed = sum(r.status == Status.SUCCESS for r in results)
    skipped = sum(r.status == Status.SKIPPED for r in results)
    print(f"{passed} passed, {len(bad)} failed, {skipped} skipped", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
