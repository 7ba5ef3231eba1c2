"""Running generations on a Ray cluster: one actor per GPU (or CPU share), each with its own
engine cache, fed by the server's job store or by a CLI fan-out (``compare --ray``, a folder of
images with ``--ray``).

``connection`` joins or starts the cluster, ``pool`` chooses actors and carries progress, cancel
and dead actors, ``actor`` runs on the workers, ``shipping`` moves input files there and outputs back.
"""
