"""The solver daemon: takes tasks, posts claims with bonds, defends them, collects."""
