"""The operator's side of the wildlife camera-trap pipeline: the CLI and the local engine."""
