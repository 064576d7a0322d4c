"""The shared package of the wildlife camera-trap pipeline: the layer every deployment unit stands on.

Used by the Lambda functions (as a layer), by the GPU task (in its container) and by the CLI. It holds
the run settings (``config``), where a run's files live (``layout``) and what they hold (``records``),
storage for ``s3://`` URIs and local paths, planning, materialize, costs, the result schema and the
MegaDetector and SpeciesNet output formats. It imports the standard library, boto3, pyarrow and
numpy only: never torch or a model library (the Lambda layer could not hold them), never
``wildlife_gpu`` or ``wildlife`` (``tests/unit/test_architecture.py`` checks).
"""

__version__ = "0.1.0"
