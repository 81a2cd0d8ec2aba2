"""Records and specs: problems, shot and result schemas, tasks, datasets, seeds, build and eval specs.

The lowest layer: imports nothing else of flows."""
