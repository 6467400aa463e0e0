"""CDK app entry: `npx aws-cdk@2 deploy` (through cdk.json) or `python app.py`.

Run directly, it writes the cloud assembly to ./cdk.out unless CDK_OUTDIR says where.
"""

from __future__ import annotations

import os

from infra.stack import build_app


def main() -> None:
    outdir = None if os.environ.get("CDK_OUTDIR") else "cdk.out"
    build_app(outdir=outdir).synth()


if __name__ == "__main__":
    main()
