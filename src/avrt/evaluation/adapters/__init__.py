"""One reader per benchmark's official annotation file, all producing `BenchmarkRecord`s."""
