pytest_plugins = ["kgctl.testing"]
