"""The anomaly lab: what concurrent sagas do to each other, in both styles, with each isolation
countermeasure off and on (docs/anomalies.md)."""
