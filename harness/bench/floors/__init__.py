"""Each engine's floor: the same saga shape with no-op work, measured in the same run."""
