"""The embedded demo: a local S3 seeded with demo data, the local YT, and the commands
``yt-assets demo`` (materialise everything, print the tables) and ``yt-assets dev`` (the Dagster UI).

Modules: :mod:`.seed` (the demo objects, pure), :mod:`.local_s3` (SeaweedFS or moto on loopback),
:mod:`.stack` (both servers and the demo's environment), :mod:`.run` (materialise and summarise),
:mod:`.dev` (``dagster dev``), :mod:`.progress` (the progress bar), :mod:`.processes` (ports, pids).
"""
