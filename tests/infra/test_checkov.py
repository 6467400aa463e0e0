"""checkov over the synthesized templates: every finding fixed, or acknowledged beside
the resource with its reason (`infra.compliance.skip_checkov`).

checkov pins its own boto3 and packaging, older than this project's, so it lives in a
virtual environment of its own (`.venv/checkov`, made by `make test`); it runs offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from infra.constants import REPO_ROOT
from tests.infra.synthesis import Assembly

CHECKOV = Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov"))

# Every check the stack acknowledges, with where its reason lives. A new one must be
# added here on purpose.
ACCEPTED_SKIPS = {
    "CKV_AWS_115",  # functions: concurrency bounded by throttling / the event source (infra/functions.py)
    "CKV_AWS_116",  # functions: failures kept by the queues' and the schedule's DLQs
    "CKV_AWS_117",  # functions: no VPC, nothing private to reach
    "CKV_AWS_173",  # functions: no secret in the environment
    "CKV_AWS_158",  # log groups: CloudWatch's own encryption
    "CKV_AWS_149",  # the created secret: AWS-managed key
    "CKV_AWS_27",  # queues: SSE-SQS (infra/queues.py)
    "CKV_AWS_18",  # the access-log bucket does not log into itself (infra/storage.py)
    "CKV_AWS_21",  # no versioning: deleted files must be gone, logs expire
    "CKV_AWS_68",  # CloudFront: no WAF on read-only objects (infra/public_urls.py)
    "CKV_AWS_174",  # CloudFront: the default certificate's TLS policy
}


@pytest.fixture(scope="module")
def checkov_report(assembly: Assembly, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkov run over both templates (dev and prod), as JSON."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: `make test` (or `make checkov`) installs it")
    folder = tmp_path_factory.mktemp("checkov")
    templates = []
    for stage in ("dev", "prod"):
        template = folder / f"{stage}.template.json"
        shutil.copy(getattr(assembly, stage).path, template)
        templates += ["--file", str(template)]
    completed = subprocess.run(
        [
            str(CHECKOV),
            *templates,
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            "--compact",
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
    )
    assert completed.stdout.strip(), completed.stderr
    report = json.loads(completed.stdout)
    return report[0] if isinstance(report, list) else report


def test_given_both_templates_when_checkov_runs_then_no_check_fails(checkov_report: dict[str, Any]) -> None:
    # Given the dev and prod templates / When checkov checks them
    summary = checkov_report["summary"]
    results = checkov_report["results"]
    skipped = Counter(check["check_id"] for check in results["skipped_checks"])
    print(
        f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped "
        f"({', '.join(f'{check} x{count}' for check, count in sorted(skipped.items()))})"
    )

    # Then every template parsed and every check passed or was acknowledged
    assert summary["parsing_errors"] == 0
    failed = [f"{check['check_id']} {check['resource']}" for check in results["failed_checks"]]
    assert failed == []
    assert summary["passed"] > 0


def test_given_the_acknowledged_checks_when_read_then_each_has_a_reason_and_is_accepted(
    checkov_report: dict[str, Any],
) -> None:
    # Given what checkov skipped on the templates' own metadata
    skipped = checkov_report["results"]["skipped_checks"]
    assert skipped
    for check in skipped:
        # Then each skip is one the team accepted on purpose
        assert check["check_id"] in ACCEPTED_SKIPS, (check["check_id"], check["resource"])
        # And carries a real reason
        assert len(check["check_result"]["suppress_comment"].strip()) >= 40, check["check_id"]
