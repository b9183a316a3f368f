"""Deployments: up/down/check, the supervisor, the topology, attaching to one."""
