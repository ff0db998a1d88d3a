"""The ``songmap`` command line."""
