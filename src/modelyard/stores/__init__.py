"""Where data lives besides the data volume: object stores named in the connections file."""
