"""S3 without Dagster: client building, errors, listing (and its fast path), prefix scanning, settings."""
