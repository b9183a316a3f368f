"""Chaos: kill and restart process kinds under load, the same for both styles."""
