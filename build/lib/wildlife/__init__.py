"""The operator's side of the wildlife camera-trap pipeline: the ``wildlife`` command and the local engine.

``commands/`` parse arguments and print (one module per subcommand), ``ops/`` talks to a deployed
stack, ``engine/`` runs the state machine on this machine. The CLI stands on top: it may import the
layer (``wildlife_common``) and, for ``wildlife run``, the GPU task; nothing imports it.
"""
