"""The error a command raises for a wrong command line that argparse could not see.

In a module of its own so that every command can raise it without importing ``wildlife.cli``
(which imports every command) or anything a command needs.
"""

from __future__ import annotations


class UsageError(Exception):
    """A wrong argument that the parser could not see (e.g. a folder that does not exist); exit status 2."""
