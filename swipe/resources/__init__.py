"""Bundled data: keyboard layouts, lexicons, configs of shipped models."""
