"""Subcommands of ``wildlife``; each module adds one (see ``wildlife.cli``)."""
