"""What users type and read: the one parser of /imagine flags, the one settings grammar, reply texts."""
