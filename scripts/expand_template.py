"""Write template.yaml as CloudFormation sees it after the SAM transform, for scanners (make lint).

The SAM translator expands each AWS::Serverless resource into what CloudFormation deploys (the
Lambda functions, their roles, the EventBridge rules and permissions), offline: local code paths
become placeholder S3 URIs, and no managed policy needs looking up because the template names none.
checkov then scans what is really deployed, not only what is written.

Usage: python scripts/expand_template.py [TEMPLATE] OUTPUT.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The properties that name local folders (sam build uploads them); the transform wants S3 URIs.
LOCAL_PATHS = ("CodeUri", "DefinitionUri", "ContentUri")


class NoManagedPolicies:
    """The transform's managed-policy loader: the template names no managed policy by name."""

    def load(self) -> dict[str, str]:
        return {}


def expand(template: Path) -> dict[str, Any]:
    document = yaml_parse(template.read_text())
    for resource in document.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in LOCAL_PATHS:
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = "s3://local-build/" + properties[key].strip("/")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the transform resolves ARNs in a region
    expanded: dict[str, Any] = transform(
        document, {"AWS::Region": os.environ["AWS_DEFAULT_REGION"]}, NoManagedPolicies()
    )
    return expanded


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    template, output = (Path("template.yaml"), Path(argv[0])) if len(argv) == 1 else (Path(argv[0]), Path(argv[1]))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(expand(template), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
