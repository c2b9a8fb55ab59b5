"""Inner task environments and their data: loaders, records and splits."""
