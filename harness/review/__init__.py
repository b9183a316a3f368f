"""`saga-compare review`: one page comparing the two styles dimension by dimension, each figure
with the run it came from and a link to its evidence.

The page is built from a list of dimension providers (`dimensions.DIMENSIONS`): each reads the
evidence the review gathered (a catalogue run, a short closed benchmark, a short chaos run, the
anomaly lab's matrix, the versioning matrix, the code itself) and gives its rows, or none when
its evidence is missing; the page then says which part was left out or did not finish. The
evidence comes from the review's parts (`run.PARTS`). A new dimension is one more part and one
more provider.
"""
