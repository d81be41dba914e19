"""YT without Dagster: table schemas and their converters, table publication and description, map operations, path naming."""
