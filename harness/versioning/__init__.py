"""Version 2 of the saga deployed while version-1 sagas run: the upgrade, the experiment.

`upgrade` performs a swap or a rolling upgrade on a running deployment; `positions` says
where version-1 sagas are parked; `cell` runs one arm per style and one strategy;
`observe` watches sagas across the upgrade; `matrix` runs every cell and `report` writes the
table (docs/versioning.md).
"""
