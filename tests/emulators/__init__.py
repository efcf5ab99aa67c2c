"""Emulators of vendor APIs, faithful to the contracts in the vendors' documentation."""
