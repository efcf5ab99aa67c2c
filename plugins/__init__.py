"""Built-in plugins, one folder per vendor or role, registered like third-party ones."""
