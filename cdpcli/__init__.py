"""cdp: a command-line client for the Customer.io Data Pipelines HTTP API."""

__version__ = "0.1.0"
