"""The demo model pack: synthetic camera-trap scenes and the small models trained on them.

``demo.scenes`` draws deterministic synthetic camera-trap photos with their ground truth,
``demo.build`` trains the demo detector and classifier and writes the bundled sample images
(``make demo-models``), and ``demo.evaluate`` measures both models on held-out scenes.

The pack exists so that the pipeline runs offline out of the box and the tests can check real
accuracy; the models know only these synthetic scenes.
"""

import os

# ultralytics reads this once, when it is first imported: with it set, ultralytics never probes
# the network (online checks, telemetry). Set before anything here imports ultralytics.
os.environ.setdefault("YOLO_OFFLINE", "1")
