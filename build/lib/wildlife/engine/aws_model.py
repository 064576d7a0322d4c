"""botocore's model of an AWS API operation: the shapes that names are mapped by.

Two places need it: the Batch patch of the Step Functions interpreter (ASL names to API names) and
the template's job definitions (CloudFormation names to API names).
"""

from __future__ import annotations

import functools

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel


@functools.cache
def operation_model(service: str, action: str) -> OperationModel:
    """botocore's model of one operation; ``action`` in snake case, e.g. ``submit_job``."""
    model = botocore.session.get_session().get_service_model(service)
    names = {xform_name(name): name for name in model.operation_names}
    if action not in names:
        raise RuntimeError(f"botocore's {service} model has no operation {action!r}")
    return model.operation_model(names[action])
