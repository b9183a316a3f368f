"""Both styles on the same scenarios: runner, catalogue, equivalence, invariants, results."""
