"""Plugins every test session loads."""

pytest_plugins = ["tests.fault_record"]
