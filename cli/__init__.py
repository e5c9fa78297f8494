"""pipectl: the command line of the image pipeline service; it talks only to the REST API."""
