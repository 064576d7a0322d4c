"""Speed figures of the detection path, each measured side by side in one run (``make bench``).

- ``decode_speedup`` (:mod:`bench.decode_speedup`): our input path vs ultralytics' default
  loading, images per second on one core, 12 MP JPEGs.
- ``shard_speedup`` (:mod:`bench.shard_speedup`): a whole detect shard through ``run_detect`` vs
  the plain ``model.predict(paths, batch=16)`` loop, same model, images and image size.
- ``gpu_wait_fraction`` (:mod:`bench.gpu_wait_fraction`): the share of the shard's time inference
  waited for input, from the commit markers of the shards above.
- ``--gpu`` (:mod:`bench.gpu`): FP16 images/s at 640 and 1280, model-only and end to end.

Every ratio is measured by alternating the two sides inside one process, round after round, and
comparing medians, so that other work on a shared machine slows both sides alike. The inputs are
synthetic 12 MP camera-trap photos (:mod:`bench.photos`), cached in ``bench/.cache``. Results go to
``bench/results.json``; ``bench/RESULTS.md`` explains them.
"""
