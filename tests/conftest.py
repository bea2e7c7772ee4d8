"""Suite-wide plugins: pytester (to test our own pytest plugin) and the emulator's fixture.

``neuromorpho_emulator`` (session scope, legacy TLS, free port) is started only by tests that ask for
it; other suites build servers with the switches they need through ``serve_in_thread``.
"""

pytest_plugins = ["pytester", "neuromorpho_fetch.emulator.pytest_plugin"]
