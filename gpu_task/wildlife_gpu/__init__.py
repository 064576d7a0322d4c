"""The GPU task: detection, classification and large materialize for one shard of a run.

Runs in the Batch container (``gpu_task/Dockerfile``) as ``python -m wildlife_gpu detect|classify|materialize``,
and in the local engine's process. It imports the layer (``wildlife_common``), torch and the model
libraries; never the CLI (``wildlife``), Powertools or moto (``tests/unit/test_architecture.py``).
"""

import os

# ultralytics reads these from the environment once, when it is first imported, and this code imports
# it only from inside this package (wildlife_gpu.detector), so setting them here comes first in every
# process: the Batch container (whose Dockerfile sets them too), the local engine and the CLI's model
# check before a run. A value already set by the user is kept.
ULTRALYTICS_ENVIRONMENT = {
    # No DNS probe at import, no model or font downloads, no usage events or crash reports: the
    # pipeline's weights are local files or come from S3 through this code, so there is nothing
    # for ultralytics to fetch, and a run must not depend on (or wait for) an internet route.
    "YOLO_OFFLINE": "1",
    # Never pip-install into the running environment. ultralytics tries to whenever it meets a
    # module or plugin it lacks, e.g. pi-heif for every photo Pillow cannot identify (it patches
    # PIL.Image.open): a damaged JPEG would change the user's venv, or fail in the image, whose
    # user may not write its packages.
    "YOLO_AUTOINSTALL": "False",
}
for _name, _value in ULTRALYTICS_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
