"""Errors that end a step with a message a person can act on.

Each class name becomes the ``Error`` that Step Functions shows in the console (a Lambda's
exception type), so the names say what went wrong in the users' words.
"""


class PipelineError(Exception):
    """Base class: the message is one line that tells the user what to fix."""


class ConfigError(PipelineError):
    """The run configuration has an unknown key or a bad value."""


class InputNotFound(PipelineError):
    """The input bucket, prefix or folder does not exist."""


class AccessDenied(PipelineError):
    """The pipeline is not allowed to read the input or write the run folder."""


class RunIntegrityError(PipelineError):
    """The merged results do not account for every input image exactly once."""
