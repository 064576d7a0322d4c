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


class StorageUnavailable(PipelineError):
    """S3 did not answer a request after every retry (throttling, a 5xx, a timeout, a broken connection).

    Nothing is known about the file itself, so no step may record it as bad: the step fails, and
    the GPU task exits with ``EX_TEMPFAIL`` so that Batch runs the job again.
    """


class RunIntegrityError(PipelineError):
    """The merged results do not account for every input image exactly once."""
