"""Helper of tests/test_analysis_sql.py: score run directories with Spark in local mode, in its own process
(the test bounds its time and no JVM outlives it).

    python tests/spark_scores.py OUT RUN [RUN ...] [-- OUT2 RUN ...]

Each group ``OUT RUN...`` is one ``spark_scores`` query over those runs, written by Spark to the folder OUT;
one Spark session serves every group (Spark starts once)."""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    from trainstats.analysis.sql_engines import spark_scores

    groups, current = [], []
    for arg in argv:
        if arg == "--":
            groups.append(current)
            current = []
        else:
            current.append(arg)
    groups.append(current)
    spark = (SparkSession.builder.master("local[2]").appName("trainstats-test")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
             .config("spark.driver.memory", "1g").config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for out, *runs in groups:
            spark_scores(spark, runs).coalesce(1).write.mode("overwrite").parquet(out)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
