"""The GPU task: detection, classification and large materialize for one shard of a run.

Runs in the Batch container (``gpu_task/Dockerfile``) as ``python -m wildlife_gpu detect|classify|materialize``,
and in the local engine's process. It imports the layer (``wildlife_common``), torch and the model
libraries; never the CLI (``wildlife``), Powertools or moto (``tests/unit/test_architecture.py``).
"""
