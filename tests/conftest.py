pytest_plugins = ["kgctl.testing.fixtures"]
