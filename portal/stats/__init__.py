"""stats feature: statistics per municipality and period, cost allocation."""
