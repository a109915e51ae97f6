"""Token and n-gram counting: pure functions, and the Beam combiners built on them."""
