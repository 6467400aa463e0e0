"""The local runtime: what AWS does around the functions, emulated on one machine.

`stack.LocalStack` wires the pieces together for `agentfiles serve`:

- `aws`: moto's server, in a process of its own;
- `tokens`: an RS256 issuer and verifier standing in for the user pool and the HTTP
  API's JWT authorizer;
- `gateway`: the HTTP API itself (routes, authorizer, CORS, payload format 2.0);
- `host` and `worker`: the functions, in instances (worker processes) that each take
  one event at a time, as many per function as events in flight, up to a limit;
- `pollers`: SQS event source mappings with partial batch responses;
- `scheduler`: the EventBridge rule that runs the vacuum.

The runtime hosts `functions/`, reads the deployed route list from `infra/` and serves
the web page from `clients/web/`; all three live in the repository, not in the installed
package. The project is installed editable (`pip install -e .`, as `make` does), so the
root is the folder that holds `local/`; it is put on `sys.path` here, before anything
needs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

if not (REPO_ROOT / "functions").is_dir() or not (REPO_ROOT / "infra").is_dir():
    raise ImportError(
        f"the local runtime needs the repository's functions/ and infra/ next to local/ ({REPO_ROOT}); "
        "install the project editable from its checkout: pip install -e '.[local]'"
    )
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
