"""The project's own pipelines, one ``defs.yaml`` per folder, loaded by ``yt_assets.definitions``
with ``dg.load_from_defs_folder`` (add a pipeline: ``dg scaffold defs yt_assets.S3ToYTComponent NAME``)."""
