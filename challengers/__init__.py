"""The challenger watchtower: re-executes every claim, disputes wrong ones, collects."""
