"""Subcommands of ``wildlife``; each module adds one (see ``wildlife.cli``).

A command parses its arguments, calls ``wildlife.ops`` (a deployed stack) or ``wildlife.engine``
(``run`` only) and prints; it holds no AWS or pipeline logic of its own.
"""
