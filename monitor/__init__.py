"""The saga monitor: one live web page over both styles' read APIs (docs/monitor.md)."""
