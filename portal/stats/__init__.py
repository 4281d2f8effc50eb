"""Statistics per municipality and period, and the cost allocation between municipalities."""
