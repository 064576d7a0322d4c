"""The shared package of the wildlife camera-trap pipeline.

Used by the Lambda functions (as a layer), by the GPU task (in its container) and by the CLI.
It holds the run configuration, the run and shard manifests, the result schema, storage for
``s3://`` URIs and local paths, and the MegaDetector output format. It never imports torch.
"""

__version__ = "0.1.0"
