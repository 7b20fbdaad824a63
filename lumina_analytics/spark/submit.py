"""``spark-submit`` entry point: the ``lumina-analytics`` command with ``engine: spark``.

    spark-submit --master k8s://... --archives env.tar.gz#env \\
        "$(python -c 'import lumina_analytics.spark.submit as m; print(m.__file__)')" \\
        lake ingest s3a://bucket/landing/ --lake s3a://bucket/lumina/lake

The session spark-submit configured (master, executors, object-store credentials) is the one
every job uses; ``LUMINA_ENGINE`` defaults to ``spark`` here.
"""

from __future__ import annotations

import os
import sys

from lumina_analytics.cli import main


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with the Spark engine unless ``LUMINA_ENGINE`` says otherwise."""
    os.environ.setdefault("LUMINA_ENGINE", "spark")
    return main(argv)


if __name__ == "__main__":  # pragma: no cover - exercised through spark-submit
    sys.exit(run())
