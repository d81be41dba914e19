"""yt-assets: S3 listings as Dagster assets, stored in YTsaurus tables and processed by YT map operations."""
