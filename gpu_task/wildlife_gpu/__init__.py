"""The GPU task: detection, classification and large materialize for one shard of a run."""
