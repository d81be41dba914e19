"""Code that runs inside YT jobs.

Everything here ships to job nodes: it imports only the standard library, boto3 and botocore, and
never dagster or other ``yt_assets`` modules. See :mod:`yt_assets.yt_jobs.s3_processing`.
"""
