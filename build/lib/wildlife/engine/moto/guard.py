"""The guard against a moto upgrade: every patch's needs, checked before any patch is applied.

moto is pinned exactly (``PINNED_MOTO_VERSION``, the dev requirements). An upgrade may move what the
patches replace or call; ``check_moto_internals`` then fails loudly, naming each attribute, instead
of letting a run fail in a way that looks like a pipeline bug.
"""

from __future__ import annotations

import moto

from wildlife.engine.moto import batch_lock, batch_parameters, batch_runner, lambda_invoke, map_tolerance
from wildlife.engine.moto.patching import MotoInternalsChanged

PINNED_MOTO_VERSION = "5.2.5"
"""The moto release the patches were written and tested against."""

CHECKS = (batch_parameters.check, lambda_invoke.check, batch_runner.check, map_tolerance.check, batch_lock.check)


def check_moto_internals() -> None:
    """Fail when the installed moto differs from what the patches were written against.

    Call it with no patch applied: applied, the patches would be checked instead of moto.

    Raises:
        MotoInternalsChanged: listing every difference found.
    """
    problems = []
    if moto.__version__ != PINNED_MOTO_VERSION:
        problems.append(f"moto is {moto.__version__}, the patches are verified against {PINNED_MOTO_VERSION}")
    for check in CHECKS:
        problems.extend(check())
    if problems:
        raise MotoInternalsChanged(
            f"wildlife/engine/moto was written against moto {PINNED_MOTO_VERSION}; the installed moto "
            f"{moto.__version__} differs:\n  - " + "\n  - ".join(problems)
        )
