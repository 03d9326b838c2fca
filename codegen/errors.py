"""The one error the plugin reports: something it cannot turn into typed Python."""


class CodegenError(Exception):
    """A construct the generator refuses; the message names the query (or file) at fault."""
