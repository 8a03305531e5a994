"""Starting and trained weights: sources (where a file comes from), formats (reading each HDF5 layout),
matching (loading by name and by place, the report) and mismatch (why a trained file does not fit)."""
